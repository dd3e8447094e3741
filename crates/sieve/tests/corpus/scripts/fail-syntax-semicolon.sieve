# RFC 5228 §8.1: a command ends with ";".
keep
discard;
