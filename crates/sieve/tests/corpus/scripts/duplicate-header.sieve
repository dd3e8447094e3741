# RFC 7352 §3.1-3.2: duplicate :header with a :handle and :seconds.
require ["duplicate", "fileinto"];
if duplicate :handle "subj" :header "subject" :seconds 60 {
  fileinto "SameSubject";
}
