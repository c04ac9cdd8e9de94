package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"
)

// badRequest is a 400 fault whose message is format with args.
func badRequest(format string, args ...any) *Fault {
	return newFault(http.StatusBadRequest, fmt.Sprintf(format, args...))
}

const contentType = "application/json; charset=UTF-8"

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeFault(w, newFault(http.StatusInternalServerError, "internal error"))
		return
	}
	writeRaw(w, status, body)
}

// writeRaw writes body, JSON already encoded, with status.
func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// readBody reads the whole body, at most limit bytes, and checks it is
// valid UTF-8 (encoding/json would silently replace bad bytes).
func readBody(r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, newFault(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", limit))
	case err != nil:
		return nil, newFault(http.StatusBadRequest, "could not read the request body")
	case !utf8.Valid(body):
		return nil, newFault(http.StatusBadRequest, "request body is not valid UTF-8")
	}
	return body, nil
}

// decodeJSON decodes body into v, refusing unknown fields when strict, and
// anything after the value. Errors are 400s that say what is wrong.
func decodeJSON(body []byte, v any, strict bool) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return badJSON(err)
	}
	if dec.More() {
		return newFault(http.StatusBadRequest, "request body has data after the JSON value")
	}
	return nil
}

func badJSON(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return newFault(http.StatusBadRequest, "request body is empty; a JSON object is expected")
	case errors.As(err, &syn):
		return newFault(http.StatusBadRequest, fmt.Sprintf("malformed JSON at byte %d: %v", syn.Offset, syn))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "the body"
		}
		return newFault(http.StatusBadRequest, fmt.Sprintf("%s: expected %s, got JSON %s", field, typ.Type, typ.Value))
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return newFault(http.StatusBadRequest, strings.TrimPrefix(err.Error(), "json: "))
	}
	var f *Fault
	if errors.As(err, &f) {
		return f
	}
	return newFault(http.StatusBadRequest, "malformed JSON: "+err.Error())
}
