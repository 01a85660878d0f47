package bufpool

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestReuse(t *testing.T) {
	// sync.Pool may drop what it is given (a quarter of it, at random,
	// under the race detector), so look for reuse over many rounds.
	for range 100 {
		b := Get()
		b.WriteString("hello")
		p := b.Bytes()
		PutBytes(p)
		c := Get()
		if c.Len() != 0 {
			t.Fatalf("Get returned a buffer holding %q", c.String())
		}
		c.WriteString("x")
		if &c.Bytes()[0] == &p[0] {
			return
		}
	}
	t.Fatal("the memory given back was never lent again in 100 rounds")
}

func TestLargeNotKept(t *testing.T) {
	big := bytes.NewBuffer(make([]byte, 0, maxKept+1))
	Put(big)
	for range 100 {
		if b := Get(); b == big {
			t.Fatal("a buffer over the size limit came back from the pool")
		}
	}
}

// TestJSON: the pooled encoding is byte for byte json.Marshal's, which the
// queue's and the bus's readers were written against.
func TestJSON(t *testing.T) {
	for _, v := range []any{
		map[string]any{"text": "<b>Tom & Jerry</b>\u2028", "n": 1.5, "list": []int{1, 2}},
		"",
		nil,
		struct {
			A string `json:"a,omitempty"`
			B []byte
		}{B: []byte{0, 255}},
	} {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 { // the second and third use returned buffers
			b, err := JSON(v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Fatalf("JSON(%#v) = %s, want %s", v, b.Bytes(), want)
			}
			Put(b)
		}
	}
	if _, err := JSON(func() {}); err == nil {
		t.Fatal("JSON of a func: no error")
	}
}
