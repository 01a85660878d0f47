package route_test

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/route"
)

// split returns the 80/20 split the accuracy figure is measured on.
func split(tb testing.TB) (train, test []route.Labeled) {
	tb.Helper()
	docs := route.SampleConversations(42, 2000)
	return docs[:1600], docs[1600:]
}

func TestSampleConversations(t *testing.T) {
	a := route.SampleConversations(7, 600)
	b := route.SampleConversations(7, 600)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed, different data")
	}
	if c := route.SampleConversations(8, 600); reflect.DeepEqual(a, c) {
		t.Fatal("different seeds, same data")
	}
	perTopic := map[string]int{}
	distinct := map[string]bool{}
	for _, d := range a {
		perTopic[d.Topic]++
		distinct[d.Text] = true
		if strings.Contains(d.Text, "$ORDER") || strings.Contains(d.Text, "{") || strings.Contains(d.Text, "$N") {
			t.Fatalf("unexpanded template in %q", d.Text)
		}
	}
	if len(perTopic) != 6 || perTopic["billing"] != 100 || perTopic["technical"] != 100 {
		t.Fatalf("per topic = %v, want 100 of each of 6 topics", perTopic)
	}
	if len(distinct) < 590 {
		t.Fatalf("only %d distinct texts out of 600", len(distinct))
	}
}

func TestClassifierAccuracy(t *testing.T) {
	train, test := split(t)
	c := route.Train(train)
	if got, want := c.Topics(), route.SampleTopics; !reflect.DeepEqual(got, want) {
		t.Fatalf("Topics = %v, want %v", got, want)
	}
	acc := route.Evaluate(c, test)
	t.Logf("held-out accuracy: %.3f on %d messages (trained on %d)", acc, len(test), len(train))
	if acc < 0.85 {
		t.Fatalf("accuracy %.3f < 0.85", acc)
	}
	// Training accuracy far above held-out would mean memorising.
	tr := route.Evaluate(c, train)
	t.Logf("training accuracy: %.3f", tr)
	if tr < acc-0.01 || tr > 0.99 {
		t.Errorf("training accuracy %.3f: want between held-out %.3f and 0.99", tr, acc)
	}
	// At the default threshold, how many held-out messages get a topic and
	// how right those are.
	kept, right := 0, 0
	for _, d := range test {
		topic, conf := c.Predict(d.Text)
		if conf >= route.DefaultThreshold {
			kept++
			if topic == d.Topic {
				right++
			}
		}
	}
	precision := float64(right) / float64(kept)
	t.Logf("at threshold %.2f: %d of %d classified, %.3f of them right", route.DefaultThreshold, kept, len(test), precision)
	if precision < acc {
		t.Errorf("precision above the threshold %.3f is below overall accuracy %.3f: confidence means nothing", precision, acc)
	}
}

func TestClassifierPredict(t *testing.T) {
	train, _ := split(t)
	c := route.Train(train)
	for _, tt := range []struct{ text, topic string }{
		{"I was charged twice for my subscription this month", "billing"},
		{"where is my parcel? tracking hasn't updated", "shipping"},
		{"the app crashes every time I open it", "technical"},
		{"I forgot my password and cannot log in", "account"},
		{"the jacket is too small, how do I exchange it?", "returns"},
		{"do you offer a discount for 40 seats on the business plan?", "sales"},
		{"MOT DE PASSE OUBLIÉ... I can't LOG-IN!!!", "account"},
	} {
		topic, conf := c.Predict(tt.text)
		if topic != tt.topic || conf < 0.6 || conf > 1 {
			t.Errorf("Predict(%q) = %s, %.3f; want %s with confidence in [0.6, 1]", tt.text, topic, conf, tt.topic)
		}
	}
	// No feature the model knows: no topic and no confidence, rather than
	// the most frequent topic at its prior.
	for _, text := range []string{"zzz qqq", "", "!!! ???"} {
		if topic, conf := c.Predict(text); topic != "" || conf != 0 {
			t.Errorf("Predict(%q) = %q, %v; want \"\", 0", text, topic, conf)
		}
	}
	var empty route.Classifier
	if topic, conf := empty.Predict("refund"); topic != "" || conf != 0 {
		t.Errorf("untrained Predict = %q, %v", topic, conf)
	}
	var nilc *route.Classifier
	if topic, conf := nilc.Predict("refund"); topic != "" || conf != 0 {
		t.Errorf("nil Predict = %q, %v", topic, conf)
	}
}

func TestTopicsDetect(t *testing.T) {
	train, _ := split(t)
	topics := &route.Topics{
		Keywords: []route.KeywordRule{
			{Topic: "Returns", Keywords: []string{"retour", "send it back"}},
			{Topic: "billing", Keywords: []string{"invoice", "card"}},
			{Topic: "shipping", Keywords: []string{"tracking", "card"}},
			{Topic: "", Keywords: []string{"ignored"}},
		},
		Classifier: route.Train(train),
	}
	tests := []struct {
		text, topic, source string
	}{
		// The classifier would say technical; the keyword wins.
		{"The app crashes when I open my invoice", "billing", "keyword"},
		{"Je veux faire un RETOUR", "returns", "keyword"},
		{"I'll send-it back tomorrow", "returns", "keyword"},
		// Whole words only: "cardboard" is not "card", so the classifier decides.
		{"the cardboard box of my parcel is still not delivered, where is it", "shipping", "classifier"},
		// Two rules match one keyword each: the earlier wins; more matches win.
		{"my card", "billing", "keyword"},
		{"card tracking", "shipping", "keyword"},
		{"the app crashes every time I open it", "technical", "classifier"},
		{"zzz qqq", "", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		topic, source, conf := topics.Detect(tt.text)
		if topic != tt.topic || source != tt.source {
			t.Errorf("Detect(%q) = %q, %q, %.3f; want %q, %q", tt.text, topic, source, conf, tt.topic, tt.source)
		}
		if source == "keyword" && conf != 1 {
			t.Errorf("Detect(%q) keyword confidence %v, want 1", tt.text, conf)
		}
		if source == "classifier" && conf < route.DefaultThreshold {
			t.Errorf("Detect(%q) classifier confidence %v below threshold", tt.text, conf)
		}
	}
}

// TestTopicsThreshold: a prediction below the threshold leaves the topic
// unknown, at the same confidence that passes a lower threshold.
func TestTopicsThreshold(t *testing.T) {
	train, _ := split(t)
	c := route.Train(train)
	text := "I want to return the shoes and I was charged twice"
	want, conf := c.Predict(text)
	if conf > 0.999 || conf < 0.3 {
		t.Fatalf("test text is not ambiguous enough: %s at %.4f", want, conf)
	}
	below := &route.Topics{Classifier: c, Threshold: conf + 0.0001}
	if topic, source, got := below.Detect(text); topic != "" || source != "" || got != conf {
		t.Errorf("threshold above confidence: Detect = %q, %q, %v; want unknown at %v", topic, source, got, conf)
	}
	at := &route.Topics{Classifier: c, Threshold: conf}
	if topic, source, got := at.Detect(text); topic != want || source != "classifier" || got != conf {
		t.Errorf("threshold at confidence: Detect = %q, %q, %v; want %q from classifier", topic, source, got, want)
	}
	// Through the router: the unknown topic routes to any agent.
	r := route.Router{Topics: below}
	d := r.Decide(route.Request{Channel: switchboard.ChannelEmail, Text: text, Now: t0}, []route.Agent{ag("a", 0, 0, 0)})
	if d.Topic != "" || d.TopicSource != "" || d.AgentID != "a" || d.Trace[3].Reason != "topic unknown: any agent" {
		t.Errorf("Decide with unsure classifier: topic %q/%q, agent %q, trace %v", d.Topic, d.TopicSource, d.AgentID, d.Trace)
	}
	r.Topics = at
	d = r.Decide(route.Request{Channel: switchboard.ChannelEmail, Text: text, Now: t0}, []route.Agent{ag("a", 0, 0, 0)})
	if d.Topic != want || d.TopicSource != "classifier" || d.Confidence != conf {
		t.Errorf("Decide with classifier: topic %q/%q at %v, want %q at %v", d.Topic, d.TopicSource, d.Confidence, want, conf)
	}
}

func TestClassifierRoundTrip(t *testing.T) {
	train, test := split(t)
	c := route.Train(train)
	b, err := c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back route.Classifier
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	for _, d := range test {
		t1, c1 := c.Predict(d.Text)
		t2, c2 := back.Predict(d.Text)
		if t1 != t2 || c1 != c2 {
			t.Fatalf("Predict(%q): %s %v before, %s %v after round trip", d.Text, t1, c1, t2, c2)
		}
	}
	b2, _ := back.MarshalBinary()
	if string(b) != string(b2) {
		t.Fatal("marshal is not stable across a round trip")
	}
	t.Logf("model size: %d bytes", len(b))
}

func TestClassifierUnmarshalErrors(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`not json`, "route: classifier:"},
		{`{"version":2,"kind":"naive_bayes","alpha":1}`, "unsupported model"},
		{`{"version":1,"kind":"svm","alpha":1}`, "unsupported model"},
		{`{"version":1,"kind":"naive_bayes","alpha":0}`, "alpha 0"},
		{`{"version":1,"kind":"naive_bayes","alpha":1,"topics":["a","b"],"docs":[1]}`, "2 topics but 1 document counts"},
		{`{"version":1,"kind":"naive_bayes","alpha":1,"topics":["a","a"],"docs":[1,1]}`, "empty or repeated"},
		{`{"version":1,"kind":"naive_bayes","alpha":1,"topics":["a"],"docs":[-1]}`, "negative document count"},
		{`{"version":1,"kind":"naive_bayes","alpha":1,"topics":["a","b"],"docs":[1,1],"features":{"x":[1]}}`, `feature "x" has 1 counts, want 2`},
		{`{"version":1,"kind":"naive_bayes","alpha":1,"topics":["a"],"docs":[1],"features":{"x":[-3]}}`, "negative count"},
	} {
		var c route.Classifier
		err := c.UnmarshalBinary([]byte(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) || switchboard.ErrorCode(err) != switchboard.EINVALID {
			t.Errorf("UnmarshalBinary(%s) = %v, want EINVALID containing %q", tt.in, err, tt.want)
		}
	}
}

func TestEvaluateEmpty(t *testing.T) {
	if got := route.Evaluate(route.Train(nil), nil); got != 0 {
		t.Fatalf("Evaluate(empty) = %v", got)
	}
}

func TestSampleConversationsAreValidUTF8(t *testing.T) {
	for i, d := range route.SampleConversations(3, 3000) {
		if !utf8.ValidString(d.Text) {
			t.Fatalf("sample %d is not valid UTF-8: %q", i, d.Text)
		}
	}
}
