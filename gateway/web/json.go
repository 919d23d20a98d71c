package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
)

// maxBody bounds the body of every form and JSON request to the gateway.
const maxBody = 16 << 10

// DecodeJSON reads a JSON API request body into v, a pointer to a struct,
// strictly: field names must match a json tag exactly (encoding/json would
// take "USERNAME" for "username"), no key may appear twice at any depth
// (encoding/json keeps the last), and nothing may follow the value. A
// filter in front of the gateway therefore sees the request the gateway
// acts on.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if err := CheckJSON(r); err != nil {
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return BadRequest(fmt.Errorf("decode request: %w", err))
	}
	if err := checkJSONKeys(body, jsonFields(v)); err != nil {
		return BadRequest(fmt.Errorf("decode request: %w", err))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return BadRequest(fmt.Errorf("decode request: %w", err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return BadRequest(errors.New("decode request: trailing data"))
	}
	return nil
}

// jsonFields are the JSON names of the fields of the struct v points to.
func jsonFields(v any) map[string]bool {
	t := reflect.TypeOf(v).Elem()
	names := map[string]bool{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names[name] = true
		}
	}
	return names
}

// checkJSONKeys checks that body is one JSON object whose keys are all in
// fields, spelt exactly, and that no object in it repeats a key.
func checkJSONKeys(body []byte, fields map[string]bool) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != json.Delim('{') {
		return errors.New("the body is not a JSON object")
	}
	return checkObject(dec, fields, 0)
}

// checkObject reads the rest of an object whose '{' was read. fields, when
// not nil, are the keys it may have.
func checkObject(dec *json.Decoder, fields map[string]bool, depth int) error {
	if depth > 16 {
		return errors.New("nested too deeply")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		if seen[key] {
			return fmt.Errorf("key %q appears twice", key)
		}
		seen[key] = true
		if fields != nil && !fields[key] {
			return fmt.Errorf("unknown field %q", key)
		}
		if err := checkValue(dec, depth); err != nil {
			return err
		}
	}
	_, err := dec.Token() // '}'
	return err
}

// checkValue reads one value, checking the objects inside it.
func checkValue(dec *json.Decoder, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		return checkObject(dec, nil, depth+1)
	case json.Delim('['):
		for dec.More() {
			if err := checkValue(dec, depth+1); err != nil {
				return err
			}
		}
		_, err := dec.Token() // ']'
		return err
	}
	return nil
}
