package password

// CommonCount returns the number of entries of the embedded list.
func CommonCount() int { return commonPasswords().len() }
