package route

import (
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// The tokeniser writes a text's words into a byte buffer, lower-cased,
// accents folded, separated by single spaces, and records where each word
// starts and ends. Keeping the words in one buffer lets the classifier look
// features up with m[string(buf[i:j])], which Go does without allocating,
// and makes a bigram of two neighbouring words a slice of the same buffer.

type tokenizer struct {
	buf  []byte
	toks [][2]int // [start, end) in buf
}

// reset tokenises text. With dropStop, stopwords are left out (bigrams then
// join the words around them); digit-only words become "#" so that order
// numbers look alike.
func (z *tokenizer) reset(text string, dropStop bool) {
	z.buf, z.toks = z.buf[:0], z.toks[:0]
	start := -1 // start of the word being written, -1 between words
	end := func() {
		if start < 0 {
			return
		}
		w := z.buf[start:]
		digits := true
		for _, c := range w {
			if c < '0' || c > '9' {
				digits = false
				break
			}
		}
		switch {
		case digits:
			z.buf = append(z.buf[:start], '#')
		case dropStop && stopwords[string(w)]:
			z.buf = z.buf[:max(start-1, 0)] // and the space before it
			start = -1
			return
		}
		z.toks = append(z.toks, [2]int{start, len(z.buf)})
		start = -1
	}
	for i := 0; i < len(text); {
		r, size := rune(text[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(text[i:])
		}
		i += size
		switch {
		case r < utf8.RuneSelf && ('a' <= r && r <= 'z' || '0' <= r && r <= '9'):
			z.begin(&start)
			z.buf = append(z.buf, byte(r))
		case 'A' <= r && r <= 'Z':
			z.begin(&start)
			z.buf = append(z.buf, byte(r+'a'-'A'))
		case r == '\'' || r == '’' || unicode.Is(unicode.Mn, r):
			// "don't" is one word; combining marks fold away.
		case r >= utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			z.begin(&start)
			z.buf = appendFolded(z.buf, r)
		default:
			end()
		}
	}
	end()
}

func (z *tokenizer) begin(start *int) {
	if *start >= 0 {
		return
	}
	if len(z.buf) > 0 {
		z.buf = append(z.buf, ' ')
	}
	*start = len(z.buf)
}

func (z *tokenizer) word(i int) []byte { return z.buf[z.toks[i][0]:z.toks[i][1]] }

// span returns words i..j (inclusive) as one slice, joined by spaces.
func (z *tokenizer) span(i, j int) []byte { return z.buf[z.toks[i][0]:z.toks[j][1]] }

// folds maps letters that do not decompose into a base letter and marks.
var folds = map[rune]string{'ß': "ss", 'æ': "ae", 'œ': "oe", 'ø': "o", 'ł': "l", 'đ': "d", 'ı': "i", 'þ': "th", 'ð': "d"}

// appendFolded appends r lower-cased without its accents: é → e, Å → a.
func appendFolded(b []byte, r rune) []byte {
	r = unicode.ToLower(r)
	if f, ok := folds[r]; ok {
		return append(b, f...)
	}
	var tmp [utf8.UTFMax]byte
	n := utf8.EncodeRune(tmp[:], r)
	dec := norm.NFD.Properties(tmp[:n]).Decomposition()
	if dec == nil {
		return append(b, tmp[:n]...)
	}
	for len(dec) > 0 {
		d, size := utf8.DecodeRune(dec)
		dec = dec[size:]
		if !unicode.Is(unicode.Mn, d) {
			b = utf8.AppendRune(b, unicode.ToLower(d))
		}
	}
	return b
}

// normalize returns text's words joined by single spaces, stopwords kept.
func normalize(text string) string {
	var z tokenizer
	z.reset(text, false)
	return string(z.buf)
}

// stopwords are English function words and greetings that say nothing
// about a topic.
var stopwords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range []string{
		"a", "about", "above", "after", "again", "all", "also", "am", "an", "and", "any", "are", "as", "at",
		"be", "because", "been", "before", "being", "below", "between", "both", "but", "by",
		"can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from", "further",
		"had", "has", "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how",
		"i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "myself",
		"of", "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own",
		"same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them",
		"themselves", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under",
		"until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom",
		"why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves",
		"im", "ive", "id", "ill", "its", "youre", "thats", "theres", "dont", "doesnt", "didnt",
		"hi", "hello", "hey", "dear", "thanks", "thank", "thx", "please", "pls", "regards", "cheers",
		"team", "support", "hope", "well", "ok", "okay", "get", "got", "one", "now", "today", "still",
	} {
		m[w] = true
	}
	return m
}()
