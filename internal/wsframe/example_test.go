package wsframe_test

import (
	"fmt"

	"github.com/wssgate/wssgate/internal/wsframe"
)

// A relay feeds what it reads to a Parser, however it is split, and
// learns where each frame starts and what each control frame says.
func ExampleParser() {
	key := [4]byte{1, 2, 3, 4}
	var wire []byte
	wire = wsframe.AppendHeader(wire, wsframe.Header{Fin: true, Opcode: wsframe.OpText, Length: 5})
	wire = append(wire, "hello"...)
	wire = wsframe.AppendCloseFrame(wire, wsframe.CloseGoingAway, "bye", true, key)

	var p wsframe.Parser
	for len(wire) > 0 {
		n, ev := p.Parse(wire[:min(len(wire), 3)]) // as if read 3 bytes at a time
		wire = wire[n:]
		switch h := p.Header(); ev {
		case wsframe.EventHeader:
			fmt.Printf("frame: opcode %d, %d bytes\n", h.Opcode, h.Length)
		case wsframe.EventControl:
			payload := p.ControlPayload()
			fmt.Printf("control: opcode %d, code %d, reason %q\n", h.Opcode, wsframe.CloseCode(payload), payload[2:])
		}
	}
	// Output:
	// frame: opcode 1, 5 bytes
	// control: opcode 8, code 1001, reason "bye"
}
