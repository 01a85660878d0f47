package meta

import (
	"encoding/json"
	"testing"
)

func TestNumberText(t *testing.T) {
	for _, tt := range []struct {
		raw  string
		want string
		ok   bool
	}{
		{`1749416383`, "1749416383", true},
		{`"1749416383"`, "1749416383", true},
		{`" 42 "`, "42", true},
		{`""`, "", false},
		{`null`, "", false},
		{``, "", false},
		{`{"a":1}`, "", false},
		{`true`, "", false},
	} {
		got, ok := NumberText(json.RawMessage(tt.raw))
		if got != tt.want || ok != tt.ok {
			t.Errorf("NumberText(%s) = %q, %v; want %q, %v", tt.raw, got, ok, tt.want, tt.ok)
		}
	}
	if !IsNull(nil) || !IsNull(json.RawMessage(" null ")) || IsNull(json.RawMessage("0")) {
		t.Error("IsNull")
	}
}
