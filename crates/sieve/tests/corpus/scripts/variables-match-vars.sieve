# RFC 5229 §3.2: match variables ${0}..${9} from :matches.
require ["variables", "fileinto"];
if header :matches "subject" "*: *" {
  fileinto "Prefix.${1}";
}
