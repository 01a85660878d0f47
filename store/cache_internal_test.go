package store

import (
	"context"
	"path/filepath"
	"testing"
)

// TestSQLiteCacheBudget: the page cache budget is split between the
// writer (half) and the readers (the rest, evenly), counted in the memory
// a cached page takes, not in page data.
func TestSQLiteCacheBudget(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "cache.db"), Options{CacheBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var writer, reader int64
	if err := db.write.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&writer); err != nil {
		t.Fatal(err)
	}
	if err := db.read.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&reader); err != nil {
		t.Fatal(err)
	}
	if want := int64(32<<20) / cachedPageCost; writer != want {
		t.Errorf("writer's cache: %d pages, want %d (32 MB at %d bytes a page)", writer, want, cachedPageCost)
	}
	if want := int64(32<<20) / sqliteReaders / cachedPageCost; reader != want {
		t.Errorf("a reader's cache: %d pages, want %d", reader, want)
	}
}
