package identity

import (
	"encoding/json"

	"github.com/quotaledger/quotaledger/ledger"
)

// follow keeps the records in memory current on a follower of a cluster:
// the ledger hands over the records of identity's key spaces that each
// journal record from the leader writes (ledger.OnFollow), and they replace
// or remove what memory holds under their keys, as Open loads them. A
// record that does not decode is logged and skipped: the leader wrote it,
// so it decoded there.
func (s *Store) follow(rs []ledger.RawRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rs {
		if len(r.Key) == 0 {
			continue
		}
		id := string(r.Key[1:])
		var err error
		switch r.Key[0] {
		case prefixUser:
			if old := s.users[id]; old != nil {
				delete(s.byName, foldName(old.Username))
				delete(s.users, id)
			}
			if !r.Del {
				u := new(User)
				if err = json.Unmarshal(r.Value, u); err == nil {
					s.users[u.UUID] = u
					s.byName[foldName(u.Username)] = u
				}
			}
		case prefixToken:
			var h [32]byte
			copy(h[:], id)
			if old := s.tokens[h]; old != nil {
				s.removeTokenLocked(old.tok)
			}
			if !r.Del {
				t := new(Token)
				if err = json.Unmarshal(r.Value, t); err == nil {
					s.addTokenLocked(t)
				}
			}
		case prefixReset:
			var h [32]byte
			copy(h[:], id)
			delete(s.resets, h)
			if !r.Del {
				x := new(resetRequest)
				if err = json.Unmarshal(r.Value, x); err == nil {
					s.resets[x.Hash] = x
				}
			}
		case prefixService:
			err = followInto(r, id, s.services)
		case prefixResource:
			err = followInto(r, id, s.resources)
		case prefixProject:
			err = followInto(r, id, s.projects)
		case prefixGroup:
			err = followInto(r, id, s.groups)
		}
		if err != nil {
			s.log.Error().Err(err).Str("key", string(r.Key[:1])).Msg("identity: a followed record does not decode")
		}
	}
}

// followInto replaces or removes the record of id in m.
func followInto[T any](r ledger.RawRecord, id string, m map[string]*T) error {
	delete(m, id)
	if r.Del {
		return nil
	}
	x := new(T)
	if err := json.Unmarshal(r.Value, x); err != nil {
		return err
	}
	m[id] = x
	return nil
}
