package ledger

import "github.com/quotaledger/quotaledger/holdings"

// table is the in-memory set of holdings, grouped by holder so that "the
// holdings of H" is one map lookup. It is not safe for concurrent use: the
// Ledger guards it (readers under a read lock, the writer publishing under
// the write lock).
//
// A row costs 72 bytes; a holder's rows are searched linearly until there
// are more than indexAbove, then through a map.
//
// The table also knows which holdings changed since the last checkpoint of
// the state (applier.go): a row changed in the current epoch carries it,
// and its key joins dirty once per epoch; a deleted holding's key joins it
// too. A checkpoint takes dirty and starts the next epoch (takeDirty).
type table struct {
	holders map[string]*holderRows
	n       int
	epoch   uint32
	dirty   []holdings.Key
	// moves counts the deletes: a delete moves a holder's last row into
	// the deleted one's place, or drops the holder, so a rowRef taken
	// before one may name another row.
	moves uint64
}

// rowRef is where a holding's row was found in the table, so that the
// writer, publishing the value it computed from it, does not look it up
// again (setRef). It holds while no delete happened since (moves).
type rowRef struct {
	hr    *holderRows
	i     int32
	moves uint64
}

type row struct {
	source   holdings.Source
	resource string
	value    holdings.Value
	epoch    uint32
}

type subKey struct {
	source   holdings.Source
	resource string
}

type holderRows struct {
	rows  []row
	index map[subKey]int32
}

const indexAbove = 16

// newTable returns a table with room for about n holdings.
func newTable(n int) table {
	// Holders have two holdings or more in every layout we know of.
	return table{holders: make(map[string]*holderRows, n/2)}
}

func (hr *holderRows) find(s holdings.Source, r string) int {
	if hr.index != nil {
		if i, ok := hr.index[subKey{s, r}]; ok {
			return int(i)
		}
		return -1
	}
	for i := range hr.rows {
		if hr.rows[i].resource == r && hr.rows[i].source == s {
			return i
		}
	}
	return -1
}

func (t *table) get(k holdings.Key) (holdings.Value, bool) {
	v, _, ok := t.getRef(k)
	return v, ok
}

// getRef is get that also says where the row is.
func (t *table) getRef(k holdings.Key) (holdings.Value, rowRef, bool) {
	hr := t.holders[k.Holder]
	if hr == nil {
		return holdings.Value{}, rowRef{}, false
	}
	i := hr.find(k.Source, k.Resource)
	if i < 0 {
		return holdings.Value{}, rowRef{}, false
	}
	return hr.rows[i].value, rowRef{hr: hr, i: int32(i), moves: t.moves}, true
}

// setRef is set for the holding of k whose row getRef found at ref: the
// row itself when no delete happened since, else through set.
func (t *table) setRef(ref rowRef, k holdings.Key, v holdings.Value) {
	if ref.hr == nil || ref.moves != t.moves {
		t.set(k, v)
		return
	}
	r := &ref.hr.rows[ref.i]
	r.value = v
	if r.epoch != t.epoch {
		r.epoch = t.epoch
		t.dirty = append(t.dirty, k)
	}
}

func (t *table) set(k holdings.Key, v holdings.Value) { t.put(k, v, true) }

// load sets a holding as the checkpoint being loaded has it: not marked
// changed, since there is nothing to write again (Open loaded a million
// holdings into the list of changes only to drop it, a sixth of its time).
func (t *table) load(k holdings.Key, v holdings.Value) { t.put(k, v, false) }

// put sets a holding, marking it changed in this epoch if mark.
func (t *table) put(k holdings.Key, v holdings.Value, mark bool) {
	epoch := t.epoch
	if !mark {
		epoch-- // any epoch but this one: the next change marks it
	}
	hr := t.holders[k.Holder]
	if hr == nil {
		hr = &holderRows{rows: make([]row, 0, 2)}
		t.holders[k.Holder] = hr
	}
	if i := hr.find(k.Source, k.Resource); i >= 0 {
		r := &hr.rows[i]
		r.value = v
		if mark && r.epoch != t.epoch {
			r.epoch = t.epoch
			t.dirty = append(t.dirty, k)
		}
		return
	}
	hr.rows = append(hr.rows, row{source: k.Source, resource: k.Resource, value: v, epoch: epoch})
	if mark {
		t.dirty = append(t.dirty, k)
	}
	t.n++
	switch {
	case hr.index != nil:
		hr.index[subKey{k.Source, k.Resource}] = int32(len(hr.rows) - 1)
	case len(hr.rows) > indexAbove:
		hr.index = make(map[subKey]int32, len(hr.rows))
		for i, r := range hr.rows {
			hr.index[subKey{r.source, r.resource}] = int32(i)
		}
	}
}

func (t *table) delete(k holdings.Key) {
	hr := t.holders[k.Holder]
	if hr == nil {
		return
	}
	i := hr.find(k.Source, k.Resource)
	if i < 0 {
		return
	}
	t.dirty = append(t.dirty, k)
	t.moves++
	last := len(hr.rows) - 1
	if hr.index != nil {
		delete(hr.index, subKey{k.Source, k.Resource})
		if i != last {
			hr.index[subKey{hr.rows[last].source, hr.rows[last].resource}] = int32(i)
		}
	}
	hr.rows[i] = hr.rows[last]
	hr.rows[last] = row{}
	hr.rows = hr.rows[:last]
	t.n--
	if len(hr.rows) == 0 {
		delete(t.holders, k.Holder)
	}
}

// takeDirty returns the holdings changed in this epoch, each once, and
// starts the next epoch.
func (t *table) takeDirty() []holdings.Key {
	d := t.dirty
	t.dirty = nil
	t.epoch++
	return d
}

// each calls fn for the holdings of holder, or of every holder if holder is
// nil, until fn returns false.
func (t *table) each(holder *string, fn func(holdings.Key, holdings.Value) bool) {
	visit := func(h string, hr *holderRows) bool {
		for _, r := range hr.rows {
			if !fn(holdings.Key{Holder: h, Source: r.source, Resource: r.resource}, r.value) {
				return false
			}
		}
		return true
	}
	if holder != nil {
		if hr := t.holders[*holder]; hr != nil {
			visit(*holder, hr)
		}
		return
	}
	for h, hr := range t.holders {
		if !visit(h, hr) {
			return
		}
	}
}
