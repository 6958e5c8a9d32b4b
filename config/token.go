package config

import "errors"

// checkToken accepts an API token that can travel in an Authorization
// header as written: printable ASCII without spaces. Its value is never
// part of the error.
func checkToken(token string) error {
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c > '~' {
			return errors.New("must be printable ASCII without spaces or control characters (it is sent as \"Authorization: Bearer <token>\")")
		}
	}
	return nil
}
