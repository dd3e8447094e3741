# RFC 5228 §2.4.2.4: ${hex:} and ${unicode:} in strings.
require ["encoded-character", "fileinto"];
if header :contains "subject" "${unicode:2615}" {
  fileinto "${hex:43 6f 66 66 65 65}";
} elsif header :contains "subject" "${HEX: 4c 75 6e 63 68}" {
  fileinto "Lunch";
}
