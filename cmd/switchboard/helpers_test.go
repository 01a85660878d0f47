package main

import (
	"context"
	"sync"
	"testing"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/store"
)

var testStores sync.Map // *Main -> *store.DB

// storeOf opens, once per Main, a second handle on its database, for the
// reads tests check that no API answer gives them whole.
func storeOf(tb testing.TB, m *Main) *store.DB {
	tb.Helper()
	if db, ok := testStores.Load(m); ok {
		return db.(*store.DB)
	}
	db, err := store.Open(context.Background(), m.Config.DatabaseURL, store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	testStores.Store(m, db)
	tb.Cleanup(func() { testStores.Delete(m); db.Close() })
	return db
}

// addAgent creates an agent through the inbox and returns it with its
// API token.
func addAgent(tb testing.TB, m *Main, a switchboard.Agent) (switchboard.Agent, string) {
	tb.Helper()
	a, token, err := m.Inbox.AddAgent(context.Background(), switchboard.System, a)
	if err != nil {
		tb.Fatal(err)
	}
	return a, token
}
