package sim

import "github.com/koelvoice/koel/audio/tts"

// defaultSynthesizer is the CLI's text-to-speech: espeak-ng.
func defaultSynthesizer() (tts.Synthesizer, error) {
	e, err := tts.NewEspeak(tts.EspeakConfig{})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// voiceNamed is the espeak-ng voice of that name ("" for the default).
func voiceNamed(name string) tts.Voice { return tts.Voice{Name: name} }
