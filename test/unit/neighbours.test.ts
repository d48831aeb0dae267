import { describe, expect, it } from "vitest";
import { parseArpTable } from "../../src/net/neighbours.js";

describe("neighbour table", () => {
  it("maps complete entries only", () => {
    const text = [
      "IP address       HW type     Flags       HW address            Mask     Device",
      "192.168.77.50    0x1         0x2         52:54:00:12:34:56     *        br0",
      "192.168.77.51    0x1         0x0         00:00:00:00:00:00     *        br0",
      "10.0.0.9         0x1         0x6         AA:BB:CC:DD:EE:FF     *        eth1",
      "",
    ].join("\n");
    expect([...parseArpTable(text)]).toEqual([
      ["192.168.77.50", "52:54:00:12:34:56"],
      ["10.0.0.9", "aa:bb:cc:dd:ee:ff"],
    ]);
  });
});
