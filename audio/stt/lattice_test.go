package stt

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWordPosteriors(t *testing.T) {
	words := map[string]bool{"my": true, "phone": true, "screen": true, "three": true, "broken": true}
	tests := []struct {
		name  string
		links []latticeLink
		want  []WordPosterior
	}{
		{
			name: "links of one word add up, variants count as the word",
			links: []latticeLink{
				{Word: "<s>", Posterior: 1},
				{Word: "my", Start: 0, End: 20, Posterior: 0.7},
				{Word: "my(2)", Start: 0, End: 22, Posterior: 0.3},
				{Word: "three", Start: 40, End: 60, Posterior: 0.55},
				{Word: "screen", Start: 38, End: 61, Posterior: 0.45},
				{Word: "broken", Start: 62, End: 90, Posterior: 0.99999},
			},
			want: []WordPosterior{{"broken", 1}, {"my", 1}, {"three", 0.55}, {"screen", 0.45}},
		},
		{
			name: "fillers, garbage and words outside the vocabulary are dropped",
			links: []latticeLink{
				{Word: "<sil>", Posterior: 1}, {Word: "[NOISE]", Posterior: 0.4},
				{Word: garbagePrefix + "ah", Posterior: 0.9}, {Word: "france", Posterior: 0.8},
				{Word: "phone", Posterior: 0.2},
			},
			want: []WordPosterior{{"phone", 0.2}},
		},
		{
			name: "a word said twice counts above 1; ties order by word",
			links: []latticeLink{
				{Word: "phone", Start: 0, End: 10, Posterior: 1}, {Word: "phone", Start: 12, End: 30, Posterior: 0.6},
				{Word: "my", Posterior: 0.25}, {Word: "three", Posterior: 0.25},
			},
			want: []WordPosterior{{"phone", 1.6}, {"my", 0.25}, {"three", 0.25}},
		},
		{
			name: "counts under the floor and bad posteriors are dropped",
			links: []latticeLink{
				{Word: "my", Posterior: 0.004}, {Word: "phone", Posterior: math.NaN()},
				{Word: "three", Posterior: -1}, {Word: "broken", Posterior: 0.5},
			},
			want: []WordPosterior{{"broken", 0.5}},
		},
		{name: "no lattice", links: nil, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := wordPosteriors(tt.links, words, DefaultLatticeFloor)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("wordPosteriors (-want +got):\n%s", diff)
			}
		})
	}
}
