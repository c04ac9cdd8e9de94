package console_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The console in a real headless Chromium (chromedp): the browser is
// found on the PATH (chromium, as Debian names it, or Chrome), or named by
// QUOTALEDGER_CHROMIUM. Without one the tests skip, but fail under CI
// (the CI environment variable set), where .ci/run installs it.

// findChromium returns the path of the browser, or skips the test (fails
// it under CI).
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("QUOTALEDGER_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no Chromium found (chromium, chromium-browser, google-chrome or QUOTALEDGER_CHROMIUM), and CI is set: " +
			".ci/run installs it with apt-get install -y chromium")
	}
	t.Skip("no Chromium found (chromium, chromium-browser, google-chrome, or QUOTALEDGER_CHROMIUM): apt-get install -y chromium")
	return ""
}

// browserTimeout bounds the whole browser test: only to turn a hung
// browser into a failure.
const browserTimeout = 5 * time.Minute

// chrome starts one headless Chromium for a test, with a fresh profile
// and nothing that calls out (the machine's network may be closed), and
// returns its context; the test's pages are tabs of it (newTab).
func chrome(t *testing.T) context.Context {
	t.Helper()
	path := findChromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	t.Cleanup(cancel)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.WindowSize(1280, 900),
	}
	// The browser is the test's tool, not what it tests: a start that fails
	// (Chromium exited before it listened, seen once in make test on a
	// loaded machine, its output saying nothing of why) is tried again.
	const attempts = 3
	for attempt := 1; ; attempt++ {
		actx, acancel := chromedp.NewExecAllocator(ctx, append(opts, chromedp.UserDataDir(t.TempDir()))...)
		bctx, bcancel := chromedp.NewContext(actx)
		err := chromedp.Do(bctx) // starts the browser
		if err == nil {
			t.Cleanup(acancel)
			t.Cleanup(bcancel)
			return bctx
		}
		bcancel()
		acancel()
		if attempt == attempts || ctx.Err() != nil {
			t.Fatalf("starting %s (%d attempts): %v", path, attempt, err)
		}
		t.Logf("starting %s, attempt %d: %v; trying again", path, attempt, err)
		time.Sleep(time.Second)
	}
}

// tab is a tab of the test's browser, in a browser context of its own
// (its own cookies: another person, or another device).
type tab struct {
	t    *testing.T
	e    *env
	name string
	ctx  context.Context

	mu      sync.Mutex
	console []string // what the pages said on the console
}

func newTab(t *testing.T, browser context.Context, e *env, name string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	tb := &tab{t: t, e: e, name: name, ctx: ctx}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.console = append(tb.console, m.String())
			tb.mu.Unlock()
		}
	}()
	return tb
}

// fatal fails the test with what the tab shows.
func (tb *tab) fatal(format string, args ...any) {
	tb.t.Helper()
	loc, _ := chromedp.Run(tb.ctx, chromedp.Location())
	text, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	tb.t.Fatalf("%s at %s: %s\npage:\n%.2000s", tb.name, loc, fmt.Sprintf(format, args...), text)
}

// do runs actions in the tab.
func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, actions...); err != nil {
		tb.fatal("%v", err)
	}
}

// open goes to a page of the console and waits until it has loaded.
func (tb *tab) open(path string) {
	tb.t.Helper()
	resp, err := chromedp.RunResponse(tb.ctx, chromedp.Navigate(tb.e.srv.URL+path))
	if err != nil {
		tb.fatal("open %s: %v", path, err)
	}
	_ = resp
}

// submit clicks the button sel of a form and waits for the page that
// answers it.
func (tb *tab) submit(sel string) {
	tb.t.Helper()
	if _, err := chromedp.RunResponse(tb.ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		tb.fatal("submit %s: %v", sel, err)
	}
}

// fill puts value into the field sel, replacing what it had, as a user's
// typing leaves it (the value, then input and change events). Set by a
// script rather than typed: chromedp's SendKeys reads the node's
// attributes without its lock while the tab's DOM events write them, a
// data race the race detector caught in CI (chromedp v0.23.1, query.go).
func (tb *tab) fill(sel, value string) {
	tb.t.Helper()
	tb.do(chromedp.WaitReady(chromedp.CSS(sel)))
	set, err := chromedp.Run(tb.ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(function(){
		var e = document.querySelector(%q);
		if (!e) { return false; }
		e.value = %q;
		e.dispatchEvent(new Event("input", {bubbles: true}));
		e.dispatchEvent(new Event("change", {bubbles: true}));
		return true;
	})()`, sel, value)))
	if err != nil || !set {
		tb.fatal("fill %s: %v (found: %v)", sel, err, set)
	}
}

// text returns the text of the first element sel.
func (tb *tab) text(sel string) string {
	tb.t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](
		fmt.Sprintf(`(function(){var e=document.querySelector(%q);return e?e.textContent.replace(/\s+/g," ").trim():"<none>"})()`, sel)))
	if err != nil {
		tb.fatal("text of %s: %v", sel, err)
	}
	return s
}

// count returns how many elements sel matches.
func (tb *tab) count(sel string) int {
	tb.t.Helper()
	n, err := chromedp.Run(tb.ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
	if err != nil {
		tb.fatal("count %s: %v", sel, err)
	}
	return n
}

// attr returns the attribute name of the first element sel.
func (tb *tab) attr(sel, name string) string {
	tb.t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](
		fmt.Sprintf(`(function(){var e=document.querySelector(%q);return e?(e.getAttribute(%q)||""):"<none>"})()`, sel, name)))
	if err != nil {
		tb.fatal("attribute %s of %s: %v", name, sel, err)
	}
	return s
}

// value returns the value of the field sel.
func (tb *tab) value(sel string) string {
	tb.t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		tb.fatal("value of %s: %v", sel, err)
	}
	return s
}

// path returns the path (and query) of the page shown.
func (tb *tab) path() string {
	tb.t.Helper()
	loc, err := chromedp.Run(tb.ctx, chromedp.Location())
	if err != nil {
		tb.fatal("location: %v", err)
	}
	return strings.TrimPrefix(loc, tb.e.srv.URL)
}

// expectPath fails unless the page shown is path.
func (tb *tab) expectPath(path string) {
	tb.t.Helper()
	if got := tb.path(); got != path {
		tb.fatal("at %s, want %s", got, path)
	}
}

// expectText fails unless the element sel's text contains want.
func (tb *tab) expectText(sel, want string) {
	tb.t.Helper()
	if got := tb.text(sel); !strings.Contains(got, want) {
		tb.fatal("%s says %q, want %q in it", sel, got, want)
	}
}

// login logs in with the login form.
func (tb *tab) login(username, password string) {
	tb.t.Helper()
	tb.open("/ui/login")
	tb.fill("#username", username)
	tb.fill("#password", password)
	tb.submit(`form[action="/ui/login"] button[type=submit]`)
}

// screenshot saves the page as name.png in the screenshot directory, at
// a laptop's width, or a phone's (phone).
func (tb *tab) screenshot(dir, name string, phone bool) {
	tb.t.Helper()
	if phone {
		tb.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
		defer tb.do(chromedp.EmulateViewport(1280, 900))
	}
	buf, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.fatal("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

// consoleErrors are the messages of the pages about the content security
// policy or a script's exceptions: none is expected (the pages have no
// inline script or style).
func (tb *tab) consoleErrors() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var out []string
	for _, m := range tb.console {
		l := strings.ToLower(m)
		if strings.Contains(l, "content security policy") || strings.Contains(l, "uncaught") || strings.Contains(l, "refused") {
			out = append(out, m)
		}
	}
	return out
}

// screenshotDir is where the test leaves its screenshots: a temporary
// directory, or QUOTALEDGER_SCREENSHOTS (docs/ to renew the README's).
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("QUOTALEDGER_SCREENSHOTS"); d != "" {
		return d
	}
	return t.TempDir()
}

// unlabelled lists the fields of the page that have no label (nor an
// aria-label): every field a person fills must say what it is.
const unlabelled = `(function(){var out=[];document.querySelectorAll("input,select,textarea").forEach(function(e){` +
	`if(e.type==="hidden")return;if((e.labels&&e.labels.length)||e.getAttribute("aria-label"))return;` +
	`out.push(e.outerHTML.slice(0,120))});return out.join(" | ")})()`

// tooWide lists what sticks out of a phone's screen (a page that
// scrolls sideways as a whole): a table may scroll, in its own box.
const tooWide = `(function(){if(document.documentElement.scrollWidth<=window.innerWidth)return "";var out=[];` +
	`document.querySelectorAll("body *").forEach(function(e){var r=e.getBoundingClientRect();` +
	`if(r.right>window.innerWidth+1&&!e.closest(".table-wrap"))out.push(e.tagName+"."+e.className)});` +
	`return document.documentElement.scrollWidth+"px: "+out.slice(0,10).join(" | ")})()`

// checkPage checks the page shown: its fields are labelled, and on a
// phone's screen (390 CSS pixels) it does not scroll sideways.
func (tb *tab) checkPage() {
	tb.t.Helper()
	if s, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](unlabelled)); err != nil || s != "" {
		tb.fatal("fields without a label: %s %v", s, err)
	}
	tb.do(chromedp.EmulateViewport(390, 844))
	defer tb.do(chromedp.EmulateViewport(1280, 900))
	if s, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](tooWide)); err != nil || s != "" {
		tb.fatal("wider than a phone: %s %v", s, err)
	}
}
