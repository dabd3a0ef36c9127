package parser_test

import (
	"fmt"

	"github.com/ioswarm/ioswarm/parser"
)

func ExampleDecoder() {
	// Engine.IO messages as they arrive: a binary event header, then its two
	// attachments.
	messages := []struct {
		data   []byte
		binary bool
	}{
		{[]byte(`52-/files,7["upload",{"name":"a.bin","chunks":[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]}]`), false},
		{[]byte{0xca, 0xfe}, true},
		{[]byte{0xba, 0xbe}, true},
	}
	var d parser.Decoder
	for _, m := range messages {
		p, err := d.Add(m.data, m.binary)
		if err != nil {
			fmt.Println("protocol error:", err)
			return
		}
		if p == nil {
			continue // waiting for attachments
		}
		fmt.Println(p.Type, p.Nsp, p.ID, len(p.Attachments))
		args, err := parser.NewRawArgs(p.Data, p.Attachments)
		if err != nil {
			fmt.Println(err)
			return
		}
		var event string
		var file struct {
			Name   string   `json:"name"`
			Chunks [][]byte `json:"chunks"`
		}
		if err := args[0].Decode(&event); err != nil {
			fmt.Println(err)
		}
		if err := args[1].Decode(&file); err != nil {
			fmt.Println(err)
		}
		fmt.Printf("%s %s % x\n", event, file.Name, file.Chunks)
	}
	// Output:
	// BINARY_EVENT /files 7 2
	// upload a.bin [ca fe ba be]
}

func ExampleAppendValues() {
	type upload struct {
		Name  string `json:"name"`
		Chunk []byte `json:"chunk"`
	}
	data, atts, err := parser.AppendValues(nil, nil, "upload", upload{Name: "<a.bin>", Chunk: []byte{1, 2, 3}}, 1.5)
	if err != nil {
		fmt.Println(err)
		return
	}
	text := parser.AppendEncode(nil, &parser.Packet{Type: parser.Event, Nsp: "/files", Data: data, Attachments: atts})
	fmt.Printf("%s\n%v\n", text, atts)
	// Output:
	// 51-/files,["upload",{"name":"<a.bin>","chunk":{"_placeholder":true,"num":0}},1.5]
	// [[1 2 3]]
}

func ExampleRaw() {
	// Forward the arguments of a received binary event to another namespace:
	// placeholders are renumbered, nothing is decoded.
	args, _ := parser.NewRawArgs([]byte(`["in",{"_placeholder":true,"num":1},{"k":{"_placeholder":true,"num":0}}]`), [][]byte{{0xaa}, {0xbb}})
	data, atts, _ := parser.AppendValues(nil, nil, "out", args[1], args[2])
	fmt.Printf("%s %x\n", data, atts)

	v, _ := args[2].Value()
	fmt.Printf("%v\n", v)
	// Output:
	// ["out",{"_placeholder":true,"num":0},{"k":{"_placeholder":true,"num":1}}] [bb aa]
	// map[k:[170]]
}
