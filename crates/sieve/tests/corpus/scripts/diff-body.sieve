# diff: body (a case of the differential test against Pigeonhole)
require ["body", "fileinto"];
if body :text :contains "invoice" { fileinto "Invoices"; }
if body :raw :contains "<b>" { fileinto "Html"; }
