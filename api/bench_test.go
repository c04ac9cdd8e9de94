package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/ledger"
)

// BenchmarkHTTPIssueAccept is the workload of DESIGN.md §7 over loopback
// HTTP with keep-alive: 64 clients issue 4-provision commissions (user and
// project holdings of two resources, 100,000 holdings) and accept them, on a
// durable on-disk ledger. Run:
//
//	go test ./api -run '^$' -bench BenchmarkHTTPIssueAccept -benchtime 10s
func BenchmarkHTTPIssueAccept(b *testing.B) {
	const clients, users, projects = 64, 49_000, 1000
	ctx := context.Background()
	l, err := ledger.Open(ledger.Options{Dir: b.TempDir(), Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	id, err := identity.Open(l, identity.Options{})
	if err != nil {
		b.Fatal(err)
	}
	token, _, err := id.CreateService(ctx, identity.NewService{Name: "cyclades", Type: "compute"})
	if err != nil {
		b.Fatal(err)
	}
	provisions := func(u int) []map[string]any {
		user, project := fmt.Sprintf("user:%08d", u), fmt.Sprintf("project:%05d", u%projects)
		var ps []map[string]any
		for _, r := range []string{"cyclades.vm", "cyclades.ram"} {
			ps = append(ps,
				map[string]any{"holder": user, "source": project, "resource": r, "quantity": 1},
				map[string]any{"holder": project, "source": nil, "resource": r, "quantity": 1})
		}
		return ps
	}
	var settings []ledger.HoldingSetting
	for u := 0; u < users; u++ {
		for i, p := range provisions(u) {
			if i%2 == 1 && u >= projects {
				continue
			}
			src := holdings.NullSource
			if s, ok := p["source"].(string); ok {
				src = holdings.SourceOf(s)
			}
			settings = append(settings, ledger.HoldingSetting{
				Key: holdings.Key{Holder: p["holder"].(string), Source: src, Resource: p["resource"].(string)}, Limit: 1 << 50})
		}
		if len(settings) > 10_000 {
			if err := l.SetHoldings(ctx, settings); err != nil {
				b.Fatal(err)
			}
			settings = settings[:0]
		}
	}
	if err := l.SetHoldings(ctx, settings); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(New(l, id, Options{Logger: zerolog.Nop()}))
	defer srv.Close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients}}

	post := func(path string, body []byte) (int, []byte, error) {
		req, _ := http.NewRequest("POST", srv.URL+path, bytes.NewReader(body))
		req.Header.Set("X-Auth-Token", token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		return resp.StatusCode, raw, err
	}
	bodies := make([][]byte, 4096)
	for i := range bodies {
		bodies[i], _ = json.Marshal(map[string]any{"name": "bench", "provisions": provisions(i * 11 % users)})
	}
	accept := []byte(`{"accept": ""}`)

	var next atomic.Int64
	var mu sync.Mutex
	var all []time.Duration
	var failed atomic.Value
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for g := 0; g < clients; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 2*b.N/clients+2)
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					break
				}
				t0 := time.Now()
				st, raw, err := post("/account/v1.0/commissions", bodies[i%len(bodies)])
				lat = append(lat, time.Since(t0))
				if err != nil || st != http.StatusCreated {
					failed.Store(fmt.Errorf("issue: %d %s %v", st, raw, err))
					break
				}
				var out struct{ Serial uint64 }
				if err := json.Unmarshal(raw, &out); err != nil {
					failed.Store(err)
					break
				}
				t0 = time.Now()
				st, raw, err = post(fmt.Sprintf("/account/v1.0/commissions/%d/action", out.Serial), accept)
				lat = append(lat, time.Since(t0))
				if err != nil || st != http.StatusOK {
					failed.Store(fmt.Errorf("accept: %d %s %v", st, raw, err))
					break
				}
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
	slices.Sort(all)
	b.ReportMetric(float64(2*b.N)/elapsed.Seconds(), "calls/s")
	b.ReportMetric(float64(4*b.N)/elapsed.Seconds(), "provisions/s")
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	}
}
