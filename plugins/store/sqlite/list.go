package sqlite

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// stringList decodes a JSON array of strings as the store writes it (a
// session's methods, a user's products). It is on the path of every session
// read, so the usual shape, strings without escapes, is split in place: the
// elements share the column's memory and the slice is the only allocation.
// Anything else goes through encoding/json. An empty array is an empty,
// non-nil slice, as json.Unmarshal makes it.
func stringList(s string) ([]string, error) {
	if list, ok := plainList(s); ok {
		return list, nil
	}
	var list []string
	if err := json.Unmarshal([]byte(s), &list); err != nil {
		return nil, fmt.Errorf("string list: %w", err)
	}
	return list, nil
}

// plainList splits `["a","b"]` with no escapes and no white space; ok is
// false for any other text (encoding/json would replace invalid UTF-8).
func plainList(s string) (list []string, ok bool) {
	if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' || strings.IndexByte(s, '\\') >= 0 || !utf8.ValidString(s) {
		return nil, false
	}
	body := s[1 : len(s)-1]
	if body == "" {
		return []string{}, true
	}
	list = make([]string, 0, strings.Count(body, ",")+1)
	for {
		if len(body) < 2 || body[0] != '"' {
			return nil, false
		}
		end := strings.IndexByte(body[1:], '"') + 1
		if end == 0 {
			return nil, false
		}
		elem := body[1:end]
		for i := 0; i < len(elem); i++ {
			// Control characters are invalid JSON; leave them to
			// encoding/json to refuse.
			if elem[i] < 0x20 {
				return nil, false
			}
		}
		list = append(list, elem)
		body = body[end+1:]
		if body == "" {
			return list, true
		}
		if body[0] != ',' {
			return nil, false
		}
		body = body[1:]
	}
}
