package sim

import (
	"strconv"
	"strings"
	"time"
)

// maxSayAsBytes caps a say-as value.
const maxSayAsBytes = 256

var (
	onesWords = []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
		"eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"}
	tensWords = []string{"", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"}
)

// sayAsText renders a KooKoo <say-as> value as the words KooKoo speaks
// (formats from the KooKoo Tunes reference): 1 number, 501 digit by digit,
// 201/202/204/222 dates (input YYYYMMDD), 401/402 currency. Unknown formats
// and values that do not fit the format are spoken as written.
func sayAsText(value, format string) string {
	value = strings.TrimSpace(value)
	if len(value) > maxSayAsBytes {
		value = value[:maxSayAsBytes]
	}
	switch format {
	case "1":
		if n, err := strconv.ParseInt(leadingDigits(value), 10, 64); err == nil {
			return numberWords(n)
		}
	case "501":
		return spellOut(value)
	case "201", "202", "204", "222":
		d := leadingDigits(value)
		if len(d) >= 8 {
			if t, err := time.Parse("20060102", d[:8]); err == nil {
				day := ordinal(t.Day())
				switch format {
				case "201":
					return t.Format("Monday January ") + day + " " + numberWords(int64(t.Year()))
				case "202":
					return t.Format("January ") + day + " " + numberWords(int64(t.Year()))
				case "204":
					return t.Format("January ") + day
				case "222":
					return t.Format("January ") + numberWords(int64(t.Day())) + " " + numberWords(int64(t.Year()))
				}
			}
		}
	case "401", "402":
		whole, frac, _ := strings.Cut(value, ".")
		if n, err := strconv.ParseInt(leadingDigits(whole), 10, 64); err == nil {
			s := numberWords(n) + " rupees"
			if format == "402" {
				p := leadingDigits(frac)
				p = (p + "00")[:2]
				s += " and " + spellOut(p) + " paise"
			}
			return s
		}
	}
	return value
}

// leadingDigits returns the ASCII digits at the start of s, at most 18.
func leadingDigits(s string) string {
	i := 0
	for i < len(s) && i < 18 && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

// spellOut says each character: digits as words, letters as letters.
func spellOut(s string) string {
	var parts []string
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			parts = append(parts, onesWords[r-'0'])
		case r == ' ':
		default:
			parts = append(parts, strings.ToUpper(string(r)))
		}
	}
	return strings.Join(parts, " ")
}

// numberWords says n in English words ("one thousand two hundred and
// thirty four").
func numberWords(n int64) string {
	if n < 0 {
		if n == -n { // math.MinInt64
			return "minus " + spellOut(strconv.FormatInt(n, 10)[1:])
		}
		return "minus " + numberWords(-n)
	}
	if n < 20 {
		return onesWords[n]
	}
	scales := []struct {
		v    int64
		name string
	}{{1_000_000_000_000_000_000, "quintillion"}, {1_000_000_000_000_000, "quadrillion"}, {1_000_000_000_000, "trillion"}, {1_000_000_000, "billion"}, {1_000_000, "million"}, {1000, "thousand"}}
	var parts []string
	for _, sc := range scales {
		if n >= sc.v {
			parts = append(parts, numberWords(n/sc.v)+" "+sc.name)
			n %= sc.v
		}
	}
	if n >= 100 {
		parts = append(parts, onesWords[n/100]+" hundred")
		n %= 100
	}
	if n > 0 {
		w := ""
		if n < 20 {
			w = onesWords[n]
		} else {
			w = tensWords[n/10]
			if n%10 != 0 {
				w += " " + onesWords[n%10]
			}
		}
		if len(parts) > 0 {
			parts = append(parts, "and "+w)
		} else {
			parts = append(parts, w)
		}
	}
	return strings.Join(parts, " ")
}

// ordinal says a day of the month ("21st").
func ordinal(d int) string {
	suffix := "th"
	switch {
	case d%100 >= 11 && d%100 <= 13:
	case d%10 == 1:
		suffix = "st"
	case d%10 == 2:
		suffix = "nd"
	case d%10 == 3:
		suffix = "rd"
	}
	return strconv.Itoa(d) + suffix
}
