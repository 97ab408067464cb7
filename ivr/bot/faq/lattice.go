package faq

import "math"

// WordCount is one word of a speech recogniser's word lattice and how many
// times the caller said it in expectation over the lattice's paths (the sum
// of the posteriors of the links carrying it).
type WordCount struct {
	Word  string
	Count float64
}

// MatchLattice scores every node as [Matcher.MatchAlternatives] does and
// mixes in the lattice's evidence: a node's score is (1 − weight) × its
// N-best score + weight × the similarity of its best phrase to the bag of
// the lattice's expected word counts. The bag holds words no N-best string
// has (a "screen" the lattice carries under the best path's "three"), each
// weighed by its posterior, so a likely word counts almost fully and a
// faint one barely. weight is clamped to [0, 1]; with weight 0 or no
// words, the result is MatchAlternatives'.
func (m *Matcher) MatchLattice(alts []Weighted, words []WordCount, weight float64) Match {
	weight = min(max(weight, 0), 1)
	if weight == 0 || len(words) == 0 || len(m.nodes) == 0 {
		return m.MatchAlternatives(alts)
	}
	sc := m.pool.Get().(*scratch)
	defer m.pool.Put(sc)
	total, sum := m.weightedScores(alts, sc)
	if sum > 0 {
		for i := range total {
			total[i] = (1 - weight) * total[i] / sum
		}
	} else {
		// No alternatives: the lattice alone decides.
		weight = 1
	}
	if m.scoreBag(words, sc) {
		for i, s := range sc.best {
			total[i] += weight * s
		}
	}
	return m.best(total)
}

// scoreBag fills sc.best with every node's score for a bag of weighted
// words, as [Matcher.score] does for a text: each word counts its weight
// instead of 1 (weights under 1 scale its TF-IDF weight linearly), and a
// word no node uses counts in the norm, scaled by its weight. Multi-word
// rewrites do not apply to a bag; synonyms and stems do. It returns false
// when no word of the bag is known.
func (m *Matcher) scoreBag(words []WordCount, sc *scratch) bool {
	clear(sc.phrase)
	sc.query = sc.query[:0]
	var norm float64
	for _, wc := range words {
		if !(wc.Count > 0) || math.IsInf(wc.Count, 0) {
			continue
		}
		for _, w := range canonical(normalize(wc.Word)) {
			s := stem(w)
			id, ok := m.terms[s]
			scale := 1.0
			if !ok {
				id, ok = m.fuzzyTerm(s)
				scale = m.p.fuzzyWeight
			}
			if !ok {
				u := m.unknownWeight(w) * wc.Count
				norm += u * u
				continue
			}
			sc.add(id, scale*wc.Count)
		}
	}
	if len(sc.query) == 0 {
		return false
	}
	for _, q := range sc.query {
		w := m.idf[q.id] * q.tf
		if q.tf > 1 {
			w = m.idf[q.id] * (1 + math.Log(q.tf))
		}
		if m.stop[q.id] {
			w *= m.p.stopWeight
		}
		norm += w * w
		for _, p := range m.post[q.id] {
			sc.phrase[p.idx] += w * p.w
		}
	}
	norm = math.Sqrt(norm)
	clear(sc.best)
	for i, node := range m.phraseNode {
		if sc.phrase[i] > sc.best[node] {
			sc.best[node] = sc.phrase[i]
		}
	}
	for i := range sc.best {
		sc.best[i] /= norm
	}
	return true
}
