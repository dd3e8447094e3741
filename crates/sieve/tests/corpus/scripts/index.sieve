# RFC 5260 §6: :index picks one occurrence, :last counts from the end.
require ["index", "fileinto"];
if header :index 2 :is "x-tag" "beta" {
  fileinto "SecondBeta";
}
if header :index 1 :last :is "x-tag" "gamma" {
  fileinto "LastGamma";
}
