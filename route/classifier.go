package route

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/switchboard-inbox/switchboard"
)

// Labeled is one training or test example.
type Labeled struct{ Text, Topic string }

// Classifier is a multinomial naive Bayes text classifier over word
// unigrams and bigrams, with Laplace (add-alpha) smoothing, computed in log
// space. Each document counts a feature once (binarised counts), which
// suits short customer messages better than raw counts: a word repeated in
// one angry message should not outweigh the rest.
//
// It keeps its raw counts, so the serialised form (MarshalBinary) is small,
// exact, and can be retrained upon; the log-probabilities are derived from
// the counts the same way after Train and after UnmarshalBinary, so both
// predict identically. Safe for concurrent Predict.
type Classifier struct {
	alpha  float64
	topics []string
	docs   []int            // documents per topic
	counts map[string][]int // feature -> documents containing it, per topic

	// Derived by prepare.
	logPrior []float64
	index    map[string]int32 // feature -> row in logLik
	logLik   []float64        // row-major, len(index) × len(topics)
	pool     sync.Pool        // *tokenizer
}

// DefaultAlpha is the Laplace smoothing Train uses.
const DefaultAlpha = 0.5

// Train fits a classifier on docs. Documents without a topic or without a
// single useful word are ignored.
func Train(docs []Labeled) *Classifier {
	c := &Classifier{alpha: DefaultAlpha, counts: map[string][]int{}}
	topicIdx := map[string]int{}
	for _, d := range docs {
		if t := strings.ToLower(strings.TrimSpace(d.Topic)); t != "" {
			if _, ok := topicIdx[t]; !ok {
				topicIdx[t] = 0
				c.topics = append(c.topics, t)
			}
		}
	}
	slices.Sort(c.topics)
	for i, t := range c.topics {
		topicIdx[t] = i
	}
	c.docs = make([]int, len(c.topics))
	var z tokenizer
	var seen map[string]bool
	for _, d := range docs {
		k, ok := topicIdx[strings.ToLower(strings.TrimSpace(d.Topic))]
		if !ok {
			continue
		}
		z.reset(d.Text, true)
		if len(z.toks) == 0 {
			continue
		}
		c.docs[k]++
		clear(seen)
		if seen == nil {
			seen = map[string]bool{}
		}
		z.features(func(f []byte) {
			if seen[string(f)] {
				return
			}
			key := string(f)
			seen[key] = true
			row := c.counts[key]
			if row == nil {
				row = make([]int, len(c.topics))
				c.counts[key] = row
			}
			row[k]++
		})
	}
	c.prepare()
	return c
}

// features calls fn with each unigram and each bigram of neighbouring
// (non-stopword) words.
func (z *tokenizer) features(fn func([]byte)) {
	for i := range z.toks {
		fn(z.word(i))
		if i > 0 {
			fn(z.span(i-1, i))
		}
	}
}

// prepare derives the log-probabilities from the counts:
//
//	P(topic)        = (docs[topic] + 1) / (N + K)
//	P(f | topic)    = (count[f][topic] + alpha) / (total[topic] + alpha·V)
//
// V being the number of distinct features seen in training. Features never
// seen in training carry no evidence and are skipped at prediction time.
func (c *Classifier) prepare() {
	k := len(c.topics)
	total := make([]float64, k)
	names := make([]string, 0, len(c.counts))
	for f, row := range c.counts {
		names = append(names, f)
		for i, n := range row {
			total[i] += float64(n)
		}
	}
	sort.Strings(names) // a stable layout: same counts, same table
	v := float64(len(names))
	n := 0
	for _, d := range c.docs {
		n += d
	}
	c.logPrior = make([]float64, k)
	for i, d := range c.docs {
		c.logPrior[i] = math.Log(float64(d+1) / float64(n+k))
	}
	c.index = make(map[string]int32, len(names))
	c.logLik = make([]float64, len(names)*k)
	denom := make([]float64, k)
	for i := range denom {
		denom[i] = math.Log(total[i] + c.alpha*v)
	}
	for row, f := range names {
		c.index[f] = int32(row)
		for i, cnt := range c.counts[f] {
			c.logLik[row*k+i] = math.Log(float64(cnt)+c.alpha) - denom[i]
		}
	}
}

// Topics returns the topics the classifier knows, sorted.
func (c *Classifier) Topics() []string { return slices.Clone(c.topics) }

// Predict returns the most probable topic of text and its posterior
// probability (the softmax of the topics' log-probabilities). A text with
// no feature the model knows returns "", 0: the prior alone says nothing
// about this text, and a confidence above zero would read as evidence. An
// untrained classifier returns "", 0 too.
func (c *Classifier) Predict(text string) (topic string, confidence float64) {
	if c == nil || len(c.topics) == 0 || c.index == nil {
		return "", 0
	}
	k := len(c.topics)
	var scoreBuf [16]float64
	scores := scoreBuf[:0]
	if k > len(scoreBuf) {
		scores = make([]float64, 0, k)
	}
	scores = append(scores, c.logPrior...)
	z, _ := c.pool.Get().(*tokenizer)
	if z == nil {
		z = new(tokenizer)
	}
	z.reset(text, true)
	// Binarised like training: each feature once. Rows are collected and
	// sorted to drop repeats without a map.
	var rowBuf [128]int32
	rows := rowBuf[:0]
	z.features(func(f []byte) {
		if r, ok := c.index[string(f)]; ok {
			rows = append(rows, r)
		}
	})
	c.pool.Put(z)
	if len(rows) == 0 {
		return "", 0
	}
	slices.Sort(rows)
	rows = slices.Compact(rows)
	for _, r := range rows {
		lik := c.logLik[int(r)*k : int(r)*k+k]
		for i := range scores {
			scores[i] += lik[i]
		}
	}
	best := 0
	for i := range scores {
		if scores[i] > scores[best] {
			best = i
		}
	}
	var sum float64
	for i := range scores {
		sum += math.Exp(scores[i] - scores[best])
	}
	return c.topics[best], 1 / sum
}

// Evaluate returns the share of test examples whose predicted topic (at
// any confidence) is their label; 0 for an empty test set.
func Evaluate(c *Classifier, test []Labeled) (accuracy float64) {
	if len(test) == 0 {
		return 0
	}
	ok := 0
	for _, d := range test {
		if t, _ := c.Predict(d.Text); t == strings.ToLower(strings.TrimSpace(d.Topic)) {
			ok++
		}
	}
	return float64(ok) / float64(len(test))
}

// classifierVersion is the version of the serialised form.
const classifierVersion = 1

type classifierJSON struct {
	Version  int              `json:"version"`
	Kind     string           `json:"kind"`
	Alpha    float64          `json:"alpha"`
	Topics   []string         `json:"topics"`
	Docs     []int            `json:"docs"`
	Features map[string][]int `json:"features"`
}

// MarshalBinary implements encoding.BinaryMarshaler: versioned JSON of the
// counts.
func (c *Classifier) MarshalBinary() ([]byte, error) {
	b, err := json.Marshal(classifierJSON{
		Version: classifierVersion, Kind: "naive_bayes", Alpha: c.alpha,
		Topics: c.topics, Docs: c.docs, Features: c.counts,
	})
	if err != nil {
		return nil, fmt.Errorf("route: classifier: marshal: %w", err)
	}
	return b, nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler. It checks the
// data thoroughly: a stored model is input like any other.
func (c *Classifier) UnmarshalBinary(b []byte) error {
	var in classifierJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return switchboard.Errorf(switchboard.EINVALID, "route: classifier: %v", err)
	}
	if in.Version != classifierVersion || in.Kind != "naive_bayes" {
		return switchboard.Errorf(switchboard.EINVALID, "route: classifier: unsupported model %q version %d (want naive_bayes version %d)", in.Kind, in.Version, classifierVersion)
	}
	if !(in.Alpha > 0) || math.IsInf(in.Alpha, 0) {
		return switchboard.Errorf(switchboard.EINVALID, "route: classifier: alpha %v: want > 0", in.Alpha)
	}
	if len(in.Docs) != len(in.Topics) {
		return switchboard.Errorf(switchboard.EINVALID, "route: classifier: %d topics but %d document counts", len(in.Topics), len(in.Docs))
	}
	seen := map[string]bool{}
	for i, t := range in.Topics {
		if t == "" || seen[t] {
			return switchboard.Errorf(switchboard.EINVALID, "route: classifier: topic %d is empty or repeated", i)
		}
		seen[t] = true
		if in.Docs[i] < 0 {
			return switchboard.Errorf(switchboard.EINVALID, "route: classifier: negative document count for %s", t)
		}
	}
	for f, row := range in.Features {
		if len(row) != len(in.Topics) {
			return switchboard.Errorf(switchboard.EINVALID, "route: classifier: feature %q has %d counts, want %d", f, len(row), len(in.Topics))
		}
		for _, n := range row {
			if n < 0 {
				return switchboard.Errorf(switchboard.EINVALID, "route: classifier: feature %q has a negative count", f)
			}
		}
	}
	if in.Features == nil {
		in.Features = map[string][]int{}
	}
	c.alpha, c.topics, c.docs, c.counts = in.Alpha, in.Topics, in.Docs, in.Features
	c.prepare()
	return nil
}
