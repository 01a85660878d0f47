package route

import (
	"strings"
	"sync"
)

// DefaultThreshold is the classifier confidence below which a topic stays
// unknown.
const DefaultThreshold = 0.6

// Topics detects a conversation's topic: keyword rules first, then the
// classifier. Do not change its fields after the first Detect: the keyword
// rules are compiled once.
type Topics struct {
	Keywords   []KeywordRule
	Classifier *Classifier // may be nil: keywords only
	Threshold  float64     // 0 = DefaultThreshold

	once     sync.Once
	compiled []compiledRule
}

// KeywordRule maps whole words or phrases to a topic. Matching ignores
// case, accents and punctuation: "Refund" matches "refund", "remboursé"
// matches "rembourse", "log in" matches "Log-in". A keyword never matches
// inside a longer word ("card" does not match "cardboard").
type KeywordRule struct {
	Topic    string   `json:"topic"`
	Keywords []string `json:"keywords"`
}

type compiledRule struct {
	topic   string
	phrases []string // normalised, each padded with spaces: " log in "
}

func (t *Topics) compile() {
	t.compiled = make([]compiledRule, 0, len(t.Keywords))
	for _, r := range t.Keywords {
		c := compiledRule{topic: strings.ToLower(strings.TrimSpace(r.Topic))}
		if c.topic == "" {
			continue
		}
		for _, k := range r.Keywords {
			if n := normalize(k); n != "" {
				c.phrases = append(c.phrases, " "+n+" ")
			}
		}
		t.compiled = append(t.compiled, c)
	}
}

// Detect returns the topic of text and where it came from: "keyword" with
// confidence 1 when a keyword rule matches (the rule matching the most
// distinct keywords, the earlier rule on a tie); else "classifier" when the
// classifier's confidence reaches the threshold; else "" for unknown, with
// the classifier's best confidence for the record.
func (t *Topics) Detect(text string) (topic, source string, confidence float64) {
	t.once.Do(t.compile)
	if len(t.compiled) > 0 {
		// Whole-word matching is a substring search on the normalised
		// text padded with spaces.
		padded := " " + normalize(text) + " "
		best, bestN := -1, 0
		for i, r := range t.compiled {
			n := 0
			for _, p := range r.phrases {
				if strings.Contains(padded, p) {
					n++
				}
			}
			if n > bestN {
				best, bestN = i, n
			}
		}
		if best >= 0 {
			return t.compiled[best].topic, "keyword", 1
		}
	}
	if t.Classifier == nil {
		return "", "", 0
	}
	topic, conf := t.Classifier.Predict(text)
	th := t.Threshold
	if th <= 0 {
		th = DefaultThreshold
	}
	if topic == "" || conf < th {
		return "", "", conf
	}
	return topic, "classifier", conf
}
