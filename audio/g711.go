package audio

import "github.com/zaf/g711"

// EncodeUlaw encodes src as G.711 mu-law into dst and returns the number of
// bytes written: min(len(dst), len(src)). It does not allocate.
func EncodeUlaw(dst []byte, src []int16) int {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	for i, s := range src {
		dst[i] = g711.EncodeUlawFrame(s)
	}
	return n
}

// DecodeUlaw decodes G.711 mu-law src into dst and returns the number of
// samples written: min(len(dst), len(src)). It does not allocate.
func DecodeUlaw(dst []int16, src []byte) int {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	for i, b := range src {
		dst[i] = g711.DecodeUlawFrame(b)
	}
	return n
}

// EncodeAlaw encodes src as G.711 A-law into dst and returns the number of
// bytes written: min(len(dst), len(src)). It does not allocate.
func EncodeAlaw(dst []byte, src []int16) int {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	for i, s := range src {
		dst[i] = g711.EncodeAlawFrame(s)
	}
	return n
}

// DecodeAlaw decodes G.711 A-law src into dst and returns the number of
// samples written: min(len(dst), len(src)). It does not allocate.
func DecodeAlaw(dst []int16, src []byte) int {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	for i, b := range src {
		dst[i] = g711.DecodeAlawFrame(b)
	}
	return n
}

func ulawSample(b byte) int16 { return g711.DecodeUlawFrame(b) }

func alawSample(b byte) int16 { return g711.DecodeAlawFrame(b) }
