package route

import "testing"

func TestNormalize(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"Remboursé, Straße; Ærø don't CARD-board 12345", "rembourse strasse aero dont card board #"},
		{"e\u0301te\u0301 ÉTÉ — Łódź", "ete ete lodz"},
		{"  ...  ", ""},
		{"order #A12 x", "order a12 x"},
	} {
		if got := normalize(tt.in); got != tt.want {
			t.Errorf("normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	var z tokenizer
	z.reset("Hi, I was charged twice for the invoice", true)
	var got []string
	z.features(func(f []byte) { got = append(got, string(f)) })
	want := []string{"charged", "twice", "charged twice", "invoice", "twice invoice"}
	if len(got) != len(want) {
		t.Fatalf("features = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("features = %q, want %q", got, want)
		}
	}
}
