package inbox

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestNth: the selection finds each rank's value as sorting does, with
// many equal values and few.
func TestNth(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, spread := range []int64{3, 1000, 1 << 40} {
		for _, n := range []int{1, 2, 17, 100, 1001, 50000} {
			a := make([]int64, n)
			for i := range a {
				a[i] = r.Int64N(spread)
			}
			sorted := slices.Sorted(slices.Values(a))
			for _, k := range []int{0, n / 2, rank(95, n), n - 1} {
				b := slices.Clone(a)
				if got := nth(b, k); got != sorted[k] {
					t.Fatalf("n=%d spread=%d: nth %d = %d, want %d", n, spread, k, got, sorted[k])
				}
				if slices.Max(b[:k+1]) != sorted[k] || (k+1 < n && slices.Min(b[k+1:]) < sorted[k]) {
					t.Fatalf("n=%d: the values are not split at %d", n, k)
				}
			}
		}
	}
}

// TestHourOf: the remembered offset gives the hour the zone's rules do,
// across daylight-saving changes and in zones a half or quarter hour off.
func TestHourOf(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	for _, name := range []string{"UTC", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Lord_Howe", "Europe/Berlin"} {
		tz, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		h := newHourOf(tz)
		// In time order, as rollups are read, and then at random.
		var times []int64
		for us := start; us < start+366*24*3600e6; us += int64(r.Int64N(int64(40 * time.Minute / time.Microsecond))) {
			times = append(times, us)
		}
		for range 20000 {
			times = append(times, start+r.Int64N(366*24*3600e6))
		}
		for _, us := range times {
			if got, want := h.at(us), time.UnixMicro(us).In(tz).Hour(); got != want {
				t.Fatalf("%s at %s: hour %d, want %d", name, time.UnixMicro(us).In(tz), got, want)
			}
		}
	}
}

// TestRollupBlobs: what is encoded decodes the same, and a cut, damaged
// or foreign blob is neither used (it is built again) nor decoded into a
// wrong figure.
func TestRollupBlobs(t *testing.T) {
	dayStart := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	in := []cycleEntry{
		{at: dayStart + 5e6, dur: 7, channel: "sms", responder: "a", topic: "billing"},
		{at: dayStart, dur: 1 << 40, channel: "email", responder: "", topic: ""},
		{at: dayStart + 86399e6, dur: 0, channel: "sms", responder: "b", topic: "billing"},
	}
	blob := encodeCycles(dayStart, slices.Clone(in), true)
	nm := &names{}
	var out []cycleEntry
	if err := decodeCycles(dayStart, blob, nm, true, func(ch, resp, topic int, at, dur int64) {
		out = append(out, cycleEntry{at: at, dur: dur, channel: nm.list[ch], responder: nm.list[resp], topic: nm.list[topic]})
	}); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(in, func(a, b cycleEntry) int { return int(a.at - b.at) })
	if !slices.Equal(in, out) {
		t.Errorf("decoded %v, want %v", out, in)
	}
	if !usable(blob) {
		t.Error("an intact blob is not usable")
	}
	flipped := slices.Clone(blob)
	flipped[len(flipped)/2] ^= 1
	for _, bad := range [][]byte{blob[:len(blob)-1], blob[:len(blob)/2], append([]byte{9}, blob[1:]...), flipped} {
		if usable(bad) {
			t.Errorf("a corrupt blob %x is usable: it would not be built again", bad)
		}
		if err := decodeCycles(dayStart, bad, &names{}, true, func(int, int, int, int64, int64) {}); err == nil {
			t.Errorf("a corrupt blob %x decoded", bad)
		}
	}
}
