package stt

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
)

// ngramModel is a back-off trigram language model estimated with absolute
// discounting, written in ARPA format for the decoder.
type ngramModel struct {
	uni map[string]float64 // log10 p(w)
	ubo map[string]float64 // log10 back-off weight of history w
	bi  map[[2]string]float64
	bbo map[[2]string]float64
	tri map[[3]string]float64
}

// trainNgram estimates a trigram model from sentences (each a word list).
// Every word of vocab gets a unigram probability, seen or not. discount
// (in (0, 1)) is subtracted from every seen bigram and trigram count; the
// mass freed goes to the lower order.
//
// general, when not empty, holds general-English unigram probabilities
// (summing to 1) interpolated into the unigrams with weight
// generalWeight: p(w) = (1 − λ) p_domain(w) + λ p_general(w). Words only in
// general get no add-one mass of the domain's, only their general share,
// so a caller's paraphrase word can be recognised as itself instead of
// being forced into the nearest FAQ word.
func trainNgram(sentences [][]string, vocab []string, discount float64, general map[string]float64, generalWeight float64) *ngramModel {
	c1 := map[string]float64{}
	c2 := map[[2]string]float64{}
	c3 := map[[3]string]float64{}
	h1 := map[string]float64{}    // count of w as a bigram history
	h2 := map[[2]string]float64{} // count of (u,v) as a trigram history
	for _, s := range sentences {
		ws := make([]string, 0, len(s)+2)
		ws = append(ws, "<s>")
		ws = append(ws, s...)
		ws = append(ws, "</s>")
		for i, w := range ws {
			if i > 0 {
				c1[w]++
			}
			if i >= 1 {
				c2[[2]string{ws[i-1], w}]++
				h1[ws[i-1]]++
			}
			if i >= 2 {
				c3[[3]string{ws[i-2], ws[i-1], w}]++
				h2[[2]string{ws[i-2], ws[i-1]}]++
			}
		}
	}
	words := map[string]bool{"</s>": true}
	for _, w := range vocab {
		words[w] = true
	}
	for w := range c1 {
		words[w] = true
	}
	// Unigrams: add-one smoothing over the whole vocabulary, so words only
	// in the dictionary keep a small probability.
	var total float64
	for _, c := range c1 {
		total += c
	}
	n := float64(len(words))
	p1 := map[string]float64{}
	for w := range words {
		p1[w] = (c1[w] + 1) / (total + n)
	}
	if len(general) > 0 && generalWeight > 0 {
		for w := range p1 {
			p1[w] *= 1 - generalWeight
		}
		for w, p := range general {
			p1[w] += generalWeight * p
		}
		p1["</s>"] += generalWeight * (1 - sumValues(general)) // keeps the total at 1
	}
	m := &ngramModel{
		uni: map[string]float64{}, ubo: map[string]float64{},
		bi: map[[2]string]float64{}, bbo: map[[2]string]float64{}, tri: map[[3]string]float64{},
	}
	for w, p := range p1 {
		m.uni[w] = math.Log10(p)
	}
	m.uni["<s>"] = -99
	// Bigrams.
	p2 := map[[2]string]float64{}
	seenMass := map[string]float64{}
	lowerMass := map[string]float64{}
	for k, c := range c2 {
		p := (c - discount) / h1[k[0]]
		p2[k] = p
		seenMass[k[0]] += p
		lowerMass[k[0]] += p1[k[1]]
	}
	for k, p := range p2 {
		m.bi[k] = math.Log10(p)
	}
	for h := range h1 {
		m.ubo[h] = math.Log10(backoffWeight(seenMass[h], lowerMass[h]))
	}
	// Trigrams.
	pbo := func(v, w string) float64 {
		if p, ok := p2[[2]string{v, w}]; ok {
			return p
		}
		return math.Pow(10, m.ubo[v]) * p1[w]
	}
	seen3 := map[[2]string]float64{}
	lower3 := map[[2]string]float64{}
	for k, c := range c3 {
		h := [2]string{k[0], k[1]}
		p := (c - discount) / h2[h]
		m.tri[k] = math.Log10(p)
		seen3[h] += p
		lower3[h] += pbo(k[1], k[2])
	}
	for h := range h2 {
		if _, ok := m.bi[h]; ok {
			m.bbo[h] = math.Log10(backoffWeight(seen3[h], lower3[h]))
		}
	}
	return m
}

func sumValues(m map[string]float64) float64 {
	var s float64
	for _, v := range m {
		s += v
	}
	return s
}

// backoffWeight normalises the left-over mass of a history.
func backoffWeight(seen, lower float64) float64 {
	left, den := 1-seen, 1-lower
	if left <= 1e-9 || den <= 1e-9 {
		return 1e-9
	}
	return left / den
}

// writeARPA writes the model in ARPA text format, n-grams sorted so the
// output is deterministic.
func (m *ngramModel) writeARPA(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "\\data\\\nngram 1=%d\nngram 2=%d\nngram 3=%d\n\n", len(m.uni), len(m.bi), len(m.tri))
	fmt.Fprintf(bw, "\\1-grams:\n")
	for _, u := range sortedKeys(m.uni) {
		if bo, ok := m.ubo[u]; ok {
			fmt.Fprintf(bw, "%.5f %s %.5f\n", m.uni[u], u, bo)
		} else {
			fmt.Fprintf(bw, "%.5f %s\n", m.uni[u], u)
		}
	}
	fmt.Fprintf(bw, "\n\\2-grams:\n")
	bis := make([][2]string, 0, len(m.bi))
	for k := range m.bi {
		bis = append(bis, k)
	}
	sort.Slice(bis, func(i, j int) bool { return strings.Join(bis[i][:], " ") < strings.Join(bis[j][:], " ") })
	for _, k := range bis {
		if bo, ok := m.bbo[k]; ok {
			fmt.Fprintf(bw, "%.5f %s %s %.5f\n", m.bi[k], k[0], k[1], bo)
		} else {
			fmt.Fprintf(bw, "%.5f %s %s\n", m.bi[k], k[0], k[1])
		}
	}
	fmt.Fprintf(bw, "\n\\3-grams:\n")
	tris := make([][3]string, 0, len(m.tri))
	for k := range m.tri {
		tris = append(tris, k)
	}
	sort.Slice(tris, func(i, j int) bool { return strings.Join(tris[i][:], " ") < strings.Join(tris[j][:], " ") })
	for _, k := range tris {
		fmt.Fprintf(bw, "%.5f %s %s %s\n", m.tri[k], k[0], k[1], k[2])
	}
	fmt.Fprintf(bw, "\n\\end\\\n")
	return bw.Flush()
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
