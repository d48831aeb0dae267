import { describe, expect, it } from "vitest";
import type { NetworkInterfaceInfo } from "node:os";
import { interfaceHolding } from "../../src/net/interfaces.js";

const v4 = (address: string): NetworkInterfaceInfo => ({ address, netmask: "255.255.255.0", family: "IPv4", mac: "02:00:00:00:00:01", internal: false, cidr: `${address}/24` });

describe("interfaceHolding", () => {
  it("names the one interface with the address, and nothing when none or several hold it", () => {
    expect(interfaceHolding("10.0.0.1", { eth0: [v4("192.168.1.5")], br0: [v4("10.0.0.1")] })).toBe("br0");
    expect(interfaceHolding("10.0.0.9", { br0: [v4("10.0.0.1")] })).toBeUndefined();
    expect(interfaceHolding("10.0.0.1", { a: [v4("10.0.0.1")], b: [v4("10.0.0.1")] })).toBeUndefined();
  });
});
