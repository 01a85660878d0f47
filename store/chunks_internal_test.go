package store

import (
	"slices"
	"testing"
)

// TestFixedChunks: every row lands in exactly one chunk, in order, and
// chunks come in a few sizes only (so their statements are reused).
func TestFixedChunks(t *testing.T) {
	sizes := map[int]bool{}
	for n := 0; n <= 600; n++ {
		s := make([]int, n)
		for i := range s {
			s[i] = i
		}
		var got []int
		for _, c := range fixedChunks(s, 256) {
			sizes[len(c)] = true
			got = append(got, c...)
		}
		if !slices.Equal(got, s) {
			t.Fatalf("n=%d: chunks lose or reorder rows", n)
		}
	}
	if len(sizes) != 5 || !sizes[1] || !sizes[4] || !sizes[16] || !sizes[64] || !sizes[256] {
		t.Fatalf("chunk sizes %v, want 1, 4, 16, 64 and 256", sizes)
	}
}
