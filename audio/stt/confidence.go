package stt

// scoreResult turns a cleaned hypothesis and its segmentation into a
// Result with a confidence in [0, 1].
func scoreResult(text string, segs []segment) Result {
	if text == "" {
		return Result{}
	}
	words := 0
	for _, c := range text {
		if c == ' ' {
			words++
		}
	}
	return Result{Text: text, Confidence: 1, Words: words + 1}
}
