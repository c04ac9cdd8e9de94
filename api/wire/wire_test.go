package wire

import (
	"encoding/json"
	"testing"
	"time"
)

func TestTimes(t *testing.T) {
	at := time.Date(2026, 11, 30, 10, 0, 0, 123456000, time.FixedZone("x", 3600))
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"TimeNull", Time{}, `null`},
		{"TimeUTC", TimeOf(at), `"2026-11-30T09:00:00.123456Z"`},
		{"MillisNull", Millis{}, `null`},
		{"Millis", MillisOf(at), `1796029200123`},
		{"OptTimeNull", OptTime{Set: true}, `null`},
		{"OptTime", OptTime{Set: true, Time: at}, `"2026-11-30T09:00:00.123456Z"`},
		{"NullStringNull", NullString(""), `null`},
		{"NullString", NullString("bytes"), `"bytes"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.v)
			if err != nil || string(b) != tc.want {
				t.Fatalf("%s: %s %v, want %s", tc.name, b, err, tc.want)
			}
		})
	}
	// Time and Millis read what older servers sent.
	for _, in := range []string{`"2026-11-30T09:00:00.123456Z"`, `"2026-11-30T09:00:00.123456"`, `"2026-11-30 09:00:00.123456"`, `1796029200123`} {
		var tm Time
		var ms Millis
		if err := json.Unmarshal([]byte(in), &tm); err != nil || !tm.Equal(at) && tm.UnixMilli() != at.UnixMilli() {
			t.Errorf("Time of %s: %v %v", in, tm, err)
		}
		if err := json.Unmarshal([]byte(in), &ms); err != nil || ms.UnixMilli() != at.UnixMilli() {
			t.Errorf("Millis of %s: %v %v", in, ms, err)
		}
	}
	for _, in := range []string{`null`, `""`} {
		var tm Time
		if err := json.Unmarshal([]byte(in), &tm); err != nil || !tm.IsZero() {
			t.Errorf("Time of %s: %v %v", in, tm, err)
		}
	}
	var bad Time
	if err := json.Unmarshal([]byte(`"yesterday"`), &bad); err == nil {
		t.Error("Time read yesterday")
	}
}

// TestOptTime checks the three states of an optional time in a request.
func TestOptTime(t *testing.T) {
	var in struct {
		A OptTime `json:"a,omitzero"`
		B OptTime `json:"b,omitzero"`
		C OptTime `json:"c,omitzero"`
	}
	if err := json.Unmarshal([]byte(`{"b":null,"c":"2026-01-02T03:04:05Z"}`), &in); err != nil {
		t.Fatal(err)
	}
	if in.A.Set || !in.B.Set || !in.B.Time.IsZero() || !in.C.Set || in.C.Time.Year() != 2026 {
		t.Fatalf("decoded %+v", in)
	}
	out, err := json.Marshal(in)
	if err != nil || string(out) != `{"b":null,"c":"2026-01-02T03:04:05Z"}` {
		t.Fatalf("encoded %s %v", out, err)
	}
	for _, bad := range []string{`{"a":1}`, `{"a":"tomorrow"}`, `{"a":"2026-01-02"}`} {
		if err := json.Unmarshal([]byte(bad), &in); err == nil {
			t.Errorf("%s was read", bad)
		}
	}
}

func TestFailedSerial(t *testing.T) {
	f := FailedSerial{Serial: 7, Fault: Faults{"itemNotFound": {Message: "serial 7 does not exist", Code: 404}}}
	b, err := json.Marshal(f)
	if err != nil || string(b) != `[7,{"itemNotFound":{"message":"serial 7 does not exist","code":404,"details":""}}]` {
		t.Fatalf("encoded %s %v", b, err)
	}
	var back FailedSerial
	if err := json.Unmarshal(b, &back); err != nil || back.Serial != 7 || back.Fault["itemNotFound"].Code != 404 {
		t.Fatalf("decoded %+v %v", back, err)
	}
	for _, bad := range []string{`[7]`, `[7,{}]`, `{"serial":7}`, `["x",{"a":{}}]`} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("%s was read", bad)
		}
	}
}
