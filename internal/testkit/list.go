package testkit

// Items is the items of a list's answer, as identity's FindXs return it
// (the window, the count of every match, an error), so that a test reads a
// whole list in one expression: testkit.Items(s.FindGroups(identity.GroupFilter{})).
// A list that fails panics, and so fails the test: a zero filter, every
// item, is never refused.
func Items[T any](items []T, _ int, err error) []T {
	if err != nil {
		panic("testkit.Items: the list failed: " + err.Error())
	}
	return items
}
