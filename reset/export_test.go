package reset

// CommonPasswordCount returns the number of entries of the embedded list.
func CommonPasswordCount() int { return commonPasswords().len() }
