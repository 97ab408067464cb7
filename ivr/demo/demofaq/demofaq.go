// Package demofaq holds the demo business's FAQ as CSV. It imports nothing
// of koel, so any package's tests (audio/stt's among them) can read the demo
// FAQ without an import cycle through ivr.
package demofaq

import (
	"bytes"
	_ "embed"
)

//go:embed demo-faq.csv
var csv []byte

// CSV returns a copy of the demo FAQ in koel's FAQ CSV format.
func CSV() []byte { return bytes.Clone(csv) }
