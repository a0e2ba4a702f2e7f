package main

import "strconv"

// numberList is a list of valid numbers (7 to 15 ASCII digits), packed: a
// number fits in 64 bits with its length (which keeps its leading zeros),
// so a million of them take 8 MB where strings took 32 MB, and a set of
// them dedupes on integers. A request of a million numbers is held this
// way from its parsing to its insert.
type numberList []uint64

// numberLenShift is where a packed number keeps its length: 10^15 < 2^50.
const numberLenShift = 50

// packNumber packs a valid number (validNumber holds).
func packNumber(s string) uint64 {
	v, _ := strconv.ParseUint(s, 10, 64) // valid: at most 15 digits
	return uint64(len(s))<<numberLenShift | v
}

// packNumbers packs valid numbers.
func packNumbers(numbers []string) numberList {
	out := make(numberList, len(numbers))
	for i, n := range numbers {
		out[i] = packNumber(n)
	}
	return out
}

// appendNumber appends a packed number's digits to b.
func appendNumber(b []byte, p uint64) []byte {
	digits := int(p >> numberLenShift)
	v := p & (1<<numberLenShift - 1)
	var tmp [20]byte
	s := strconv.AppendUint(tmp[:0], v, 10)
	for range digits - len(s) {
		b = append(b, '0')
	}
	return append(b, s...)
}

// at is number i of the list.
func (l numberList) at(i int) string { return string(appendNumber(make([]byte, 0, 15), l[i])) }

// strings unpacks the list.
func (l numberList) strings() []string {
	out := make([]string, len(l))
	for i := range l {
		out[i] = l.at(i)
	}
	return out
}

// appendJSON appends the list as a JSON array of strings, for json_each.
func (l numberList) appendJSON(b []byte) []byte {
	b = append(b, '[')
	for i, p := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(appendNumber(append(b, '"'), p), '"')
	}
	return append(b, ']')
}
