package events

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/quotaledger/quotaledger/ledger"
)

// appendPayload appends e's payload, as json.Marshal renders its Payload,
// to b: byte for byte the same (TestAppendPayloadMatchesMarshal), without
// the reflection and the Payload and PayloadHolding copies, which cost the
// relay a few microseconds per event. An event with Data (identity events,
// whose data json.Marshal compacts and escapes) is not for it: ok false.
func appendPayload(b []byte, msgID string, e *ledger.Event) (_ []byte, ok bool) {
	if len(e.Data) > 0 {
		return b, false
	}
	b = append(b, `{"id":`...)
	b = appendJSONString(b, msgID)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, TypePrefix+e.Type)
	b = append(b, `,"time":"`...)
	b = e.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if e.Serial != 0 {
		b = append(b, `,"serial":`...)
		b = strconv.AppendUint(b, e.Serial, 10)
	}
	if isCommission(e.Type) {
		b = append(b, `,"client":`...)
		b = appendJSONString(b, e.Client)
		b = append(b, `,"name":`...)
		b = appendJSONString(b, e.Name)
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, e.Reason)
	}
	if !e.IssueTime.IsZero() {
		b = append(b, `,"issue_time":"`...)
		b = e.IssueTime.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	if len(e.Holdings) > 0 {
		b = append(b, `,"holdings":[`...)
		for i := range e.Holdings {
			h := &e.Holdings[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"holder":`...)
			b = appendJSONString(b, h.Key.Holder)
			b = append(b, `,"source":`...)
			if h.Key.Source.IsNull() {
				b = append(b, "null"...)
			} else {
				b = appendJSONString(b, h.Key.Source.Name())
			}
			b = append(b, `,"resource":`...)
			b = appendJSONString(b, h.Key.Resource)
			b = appendInt(b, `,"quantity":`, h.Quantity)
			b = appendInt(b, `,"limit":`, h.After.Limit)
			b = appendInt(b, `,"usage_min":`, h.After.UsageMin)
			b = appendInt(b, `,"usage_max":`, h.After.UsageMax)
			b = appendInt(b, `,"usage":`, h.After.Usage())
			b = appendInt(b, `,"pending":`, h.After.Pending())
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}'), true
}

func appendInt(b []byte, key string, v int64) []byte {
	return strconv.AppendInt(append(b, key...), v, 10)
}

// appendJSONString appends s as json.Marshal quotes it: a string of
// printable ASCII without '"', '\\', '<', '>' and '&' as it is, any other
// through json.Marshal itself (its escapes, HTML-safe, and its handling of
// invalid UTF-8).
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
