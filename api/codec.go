package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
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

// contentTypeJSON is the Content-Type header's value of a JSON answer, set
// in the header map as it is (canonical key, one value shared by every
// answer: net/http only reads it).
var contentTypeJSON = []string{contentType}

// writeRaw writes body, JSON already encoded, with status.
func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header()["Content-Type"] = contentTypeJSON
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// readBody reads the whole body, at most limit bytes, and checks it is
// valid UTF-8 (encoding/json would silently replace bad bytes).
func readBody(r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	return checkBody(body, err, limit)
}

// checkBody is readBody's verdict on what it read: err is the reading's.
func checkBody(body []byte, err error, limit int64) ([]byte, error) {
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, newFault(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", limit))
		}
		return nil, newFault(http.StatusBadRequest, "could not read the request body")
	}
	if !utf8.Valid(body) {
		return nil, newFault(http.StatusBadRequest, "request body is not valid UTF-8")
	}
	return body, nil
}

// bodies are the buffers of pooledBody.
var bodies = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxPooledBody is the largest buffer put back in bodies.
const maxPooledBody = 64 << 10

// pooledBody reads the body as readBody does, into a buffer that goes back
// to its pool once the call is answered: for the handlers that keep none
// of the body's bytes (the commission routes, whose decoders copy what
// they keep).
func (c *call) pooledBody() ([]byte, error) {
	if c.buf == nil {
		c.buf = bodies.Get().(*[]byte)
	}
	body, err := readAll((*c.buf)[:0], c.r.Body, c.s.opts.MaxBody)
	*c.buf = body
	return checkBody(body, err, c.s.opts.MaxBody)
}

// releaseBody puts back the buffer of pooledBody.
func (c *call) releaseBody() {
	if c.buf != nil && cap(*c.buf) <= maxPooledBody {
		bodies.Put(c.buf)
	}
	c.buf = nil
}

// readAll appends what r holds to b, as io.ReadAll from
// http.MaxBytesReader(nil, r, limit) does: reading past limit is a
// *http.MaxBytesError.
func readAll(b []byte, r io.Reader, limit int64) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		// Room for one byte past the limit at most, to see it passed (as
		// MaxBytesReader does, and without overflow near MaxInt64).
		room := b[len(b):cap(b)]
		if rest := limit - int64(len(b)); int64(len(room))-1 > rest {
			room = room[:rest+1]
		}
		n, err := r.Read(room)
		b = b[:len(b)+n]
		switch {
		case int64(len(b)) > limit:
			return b, &http.MaxBytesError{Limit: limit}
		case err == io.EOF:
			return b, nil
		case err != nil:
			return b, err
		}
	}
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
