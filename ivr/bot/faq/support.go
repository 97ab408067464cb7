package faq

import "github.com/koelvoice/koel/ivr"

// Support counts the content words of text (not function words or fillers;
// after synonyms and stems, typos corrected as in [Matcher.Match]): words is
// how many distinct ones text has, known to the FAQ or not, and used how
// many of them node's user-says use, the words the match of node rests on.
// A voice caller's garbled speech often matches a node on one word among
// others ("what is the about human shipment" for an agent); the voice turn
// confirms such a match rather than answering it. node must come from this
// Matcher's Match (nil or another Matcher's node gives used 0).
func (m *Matcher) Support(text string, node *ivr.FAQNode) (used, words int) {
	n := -1
	for i := range m.nodes {
		if &m.nodes[i] == node {
			n = i
			break
		}
	}
	known, unknown := map[int32]bool{}, map[string]bool{}
	for _, w := range canonical(normalize(text)) {
		if stopWords[w] {
			continue
		}
		s := stem(w)
		id, ok := m.terms[s]
		if !ok {
			id, ok = m.fuzzyTerm(s)
		}
		if !ok {
			if !unknown[s] {
				unknown[s] = true
				words++
			}
			continue
		}
		if known[id] {
			continue
		}
		known[id] = true
		words++
		if n < 0 {
			continue
		}
		for _, p := range m.post[id] {
			if m.phraseNode[p.idx] == n {
				used++
				break
			}
		}
	}
	return used, words
}
