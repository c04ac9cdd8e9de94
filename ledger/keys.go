package ledger

import (
	"encoding/binary"

	"github.com/quotaledger/quotaledger/holdings"
)

// The key space of the ledger's Pebble database. Each record kind owns one
// leading byte; within a kind, keys are ordered so that the scans the ledger
// needs are range scans:
//
//	\x00 id | state                               meta records
//	h holder source resource                      holdings (holdings of H: prefix h|H)
//	p client serial                               pending commissions (of C: prefix p|C)
//	r serial                                      resolved commissions with their log, one a key (before blocks)
//	s block seq                                   resolved commissions with their log, those of journal record seq in block
//	g holder logtime serial index                 provision log by holder, one entry a key (before the journal)
//	l holder logtime serial index                 provision log by holder, a chunk of entries a key
//	i client key                                  idempotency records
//	o seq                                         the event outbox, in order
//
// Strings are length-prefixed (uvarint), numbers big-endian, so no string
// can run into the next field. Bytes 'A'..'Z' are left to the identity layer.
const (
	prefixMeta     = 0x00
	prefixHolding  = 'h'
	prefixPending  = 'p'
	prefixResolved = 'r'
	prefixBlock    = 's'
	prefixLog      = 'g'
	prefixLogChunk = 'l'
	prefixIdem     = 'i'
	prefixOutbox   = 'o'
)

var (
	keyMetaID    = []byte{prefixMeta, 'i', 'd'}
	keyMetaState = []byte{prefixMeta, 's', 't', 'a', 't', 'e'}
	// keyMetaCheckpoint is the journal record the checkpointed state
	// (holdings, pending commissions, idempotency records, the state
	// record) is as of; keyMetaIndexed, the last record whose provision
	// log and identity records are in the state database.
	keyMetaCheckpoint = []byte{prefixMeta, 'c', 'k', 'p', 't'}
	keyMetaIndexed    = []byte{prefixMeta, 'i', 'n', 'd', 'e', 'x'}
)

func appendFixed64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

func holdingKey(b []byte, k holdings.Key) []byte {
	return appendKeyParts(append(b, prefixHolding), k)
}

func holderPrefix(b []byte, holder string) []byte {
	return appendString(append(b, prefixHolding), holder)
}

func pendingKey(b []byte, client string, serial uint64) []byte {
	return appendFixed64(appendString(append(b, prefixPending), client), serial)
}

func resolvedKey(b []byte, serial uint64) []byte {
	return appendFixed64(append(b, prefixResolved), serial)
}

// Resolved commissions are written in blocks: every journal record's
// resolved commissions whose serials share a block (serial >>
// resolvedBlockBits) are one key, so that a record of hundreds of calls is a
// few keys instead of one a commission (each a memtable insert, a flush's and
// compactions' worth of work: docs/engine.md). A block's keys are ordered by
// the record that wrote them; a reader merges them by serial.
const resolvedBlockBits = 8

func blockOf(serial uint64) uint64 { return serial >> resolvedBlockBits }

// blockKey is the key of the resolved commissions of journal record seq in
// block.
func blockKey(b []byte, block, seq uint64) []byte {
	return appendFixed64(blockPrefix(b, block), seq)
}

// blockPrefix is the start of block's keys.
func blockPrefix(b []byte, block uint64) []byte {
	return appendFixed64(append(b, prefixBlock), block)
}

func logPrefix(b []byte, holder string) []byte {
	return appendString(append(b, prefixLog), holder)
}

func logKey(b []byte, holder string, logTime int64, serial uint64, index int) []byte {
	b = appendFixed64(logPrefix(b, holder), uint64(logTime))
	b = appendFixed64(b, serial)
	return binary.BigEndian.AppendUint16(b, uint16(index))
}

// logChunkPrefix is the start of the log chunks of holder.
func logChunkPrefix(b []byte, holder string) []byte {
	return appendString(append(b, prefixLogChunk), holder)
}

// logChunkKey is the key of a chunk of holder's log, named by its first
// entry.
func logChunkKey(b []byte, holder string, c logCursor) []byte {
	return c.append(logChunkPrefix(b, holder))
}

func idemKey(b []byte, client, key string) []byte {
	return appendString(appendString(append(b, prefixIdem), client), key)
}

func outboxKey(b []byte, seq uint64) []byte {
	return appendFixed64(append(b, prefixOutbox), seq)
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // every key is below: no upper bound
}

// decodeHoldingKey decodes a key written by holdingKey. Source and resource
// names go through intern, if set; holder, if set, is the last holder
// decoded, reused when this key has the same.
func decodeHoldingKey(key []byte, intern func([]byte) string, holder *string) (holdings.Key, error) {
	if len(key) == 0 || key[0] != prefixHolding {
		return holdings.Key{}, ErrCorrupt
	}
	d := decoder{b: key[1:], intern: intern, holder: holder}
	k := d.key()
	return k, d.done()
}

// decodePendingKey decodes a key written by pendingKey.
func decodePendingKey(key []byte) (client string, serial uint64, err error) {
	if len(key) == 0 || key[0] != prefixPending {
		return "", 0, ErrCorrupt
	}
	d := decoder{b: key[1:]}
	client = d.string()
	serial = d.fixed64()
	return client, serial, d.done()
}

// decodeLogKey decodes a key written by logKey.
func decodeLogKey(key []byte) (holder string, logTime int64, serial uint64, index int, err error) {
	if len(key) == 0 || key[0] != prefixLog {
		return "", 0, 0, 0, ErrCorrupt
	}
	d := decoder{b: key[1:]}
	holder = d.string()
	logTime = int64(d.fixed64())
	serial = d.fixed64()
	if d.err == nil && len(d.b) == 2 {
		index = int(binary.BigEndian.Uint16(d.b))
		d.b = nil
	} else {
		d.fail()
	}
	return holder, logTime, serial, index, d.done()
}
