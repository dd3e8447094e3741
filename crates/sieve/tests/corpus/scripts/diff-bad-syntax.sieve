# diff: bad syntax (a case of the differential test against Pigeonhole)
require "fileinto";
if header :contains "subject" "x" {
    fileinto "A"
}
