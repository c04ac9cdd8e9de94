package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/quotaledger/quotaledger/api/wire"
)

// The Astakos user catalogs: /account/v1.0/user_catalogs and
// service/user_catalogs.

// catalogList reads "uuids" or "displaynames": missing is an empty list,
// null is every user for services (nil) and an empty list for users.
func catalogList(m map[string]json.RawMessage, name string, userCall bool) ([]string, error) {
	raw, ok := m[name]
	if !ok {
		return []string{}, nil
	}
	if isNull(raw) {
		if userCall {
			return []string{}, nil
		}
		return nil, nil
	}
	if raw[0] != '[' {
		return nil, badRequest("%q should be a list of strings", name)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, badRequest("%q should be a list of strings", name)
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		s, ok := rawString(it)
		if !ok {
			return nil, badRequest("%q should be a list of strings", name)
		}
		out = append(out, s)
	}
	return out, nil
}

// astCatalogs answers POST /account/v1.0/user_catalogs (userCall) and
// service/user_catalogs.
func (s *Server) astCatalogs(userCall bool) handlerFunc {
	return func(c *call) error {
		body, err := readBody(c.r, c.s.opts.MaxBody)
		if err != nil {
			return catalogsFault(err)
		}
		out, err := s.catalogs(body, userCall)
		if err != nil {
			return err
		}
		return c.json(http.StatusOK, out)
	}
}

// catalogs looks up the uuids and usernames that body names (both wires'
// user catalogs; userCall: a user's call, where null names no one).
func (s *Server) catalogs(body []byte, userCall bool) (wire.Catalogs, error) {
	m, err := parseObject(body)
	if err != nil {
		return wire.Catalogs{}, catalogsFault(err)
	}
	uuids, err := catalogList(m, "uuids", userCall)
	if err != nil {
		return wire.Catalogs{}, err
	}
	names, err := catalogList(m, "displaynames", userCall)
	if err != nil {
		return wire.Catalogs{}, err
	}
	return wire.Catalogs{UUIDCatalog: s.id.Usernames(uuids), DisplayNameCatalog: s.id.UUIDs(names)}, nil
}

// catalogsFault is the lineage's fault of a catalogs body that could not
// be read as a JSON object.
func catalogsFault(err error) error {
	var f *Fault
	if errors.As(err, &f) && f.Code == http.StatusBadRequest {
		return badRequest("Request body should be json formatted: %s", f.Message)
	}
	return err
}
