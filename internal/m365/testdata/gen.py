# Writes endpoints-worldwide-skype.json; see README.md. Run: python3 gen.py
import json

teams_ips = ["52.112.0.0/14", "52.122.0.0/15", "52.238.119.141/32", "52.244.160.207/32",
             "2603:1027::/48", "2603:1037::/48", "2603:1047::/48", "2603:1057::/48",
             "2603:1063::/38", "2620:1ec:6::/48", "2620:1ec:40::/42"]

def s(id, area, display, category, required, er, urls=None, ips=None, tcp=None, udp=None, notes=None):
    e = {"id": id, "serviceArea": area, "serviceAreaDisplayName": display}
    if urls: e["urls"] = urls
    if ips: e["ips"] = ips
    if tcp: e["tcpPorts"] = tcp
    if udp: e["udpPorts"] = udp
    e["expressRoute"] = er
    e["category"] = category
    e["required"] = required
    if notes: e["notes"] = notes
    return e

T = "Microsoft Teams"
C = "Microsoft 365 Common and Office Online"
sets = [
    # The Skype area as the documentation's table lists it (version 2025013000).
    s(11, "Skype", T, "Optimize", True, True, ips=["52.112.0.0/14", "52.122.0.0/15", "2603:1063::/38"], udp="3478,3479,3480,3481"),
    s(12, "Skype", T, "Allow", True, True,
      urls=["*.lync.com", "*.teams.cloud.microsoft", "*.teams.microsoft.com", "teams.cloud.microsoft", "teams.microsoft.com"],
      ips=teams_ips, tcp="443,80"),
    s(16, "Skype", T, "Default", True, False, urls=["*.keydelivery.mediaservices.windows.net", "*.streaming.mediaservices.windows.net"], tcp="443"),
    s(17, "Skype", T, "Default", True, False, urls=["aka.ms"], tcp="443"),
    s(18, "Skype", T, "Default", False, False, urls=["*.users.storage.live.com"], tcp="443",
      notes="Federation with Skype and public IM connectivity: Contact picture retrieval"),
    s(19, "Skype", T, "Default", False, False, urls=["adl.windows.com"], tcp="443,80",
      notes="For end user and customer owned device updates"),
    s(27, "Skype", T, "Default", True, False, urls=["join.secure.skypeassets.com", "mlccdnprod.azureedge.net"], tcp="443"),
    s(127, "Skype", T, "Default", True, False, urls=["*.skype.com"], tcp="443,80"),
    s(180, "Skype", T, "Default", True, False, urls=["compass-ssl.microsoft.com"], tcp="443"),
    # The Common area, which the service adds to every answer: skipped.
    s(46, "Common", C, "Allow", True, True, urls=["*.officeapps.live.com", "*.online.office.com", "office.live.com"],
      ips=["13.107.6.171/32", "13.107.18.15/32", "13.107.140.6/32", "52.108.0.0/14", "2603:1063:2000::/38"], tcp="443,80"),
    s(56, "Common", C, "Allow", True, True, urls=["*.auth.microsoft.com", "login.microsoftonline.com"],
      ips=["20.20.32.0/19", "20.190.128.0/18", "40.126.0.0/18", "2603:1006:2000::/48"], tcp="443,80"),
    s(184, "Common", C, "Default", True, False, urls=["*.cloud.microsoft", "*.static.microsoft"], tcp="443,80", udp="443"),
    # Another area, as if ServiceAreas had been ignored: skipped.
    s(1, "Exchange", "Exchange Online", "Optimize", True, True, urls=["outlook.office.com"],
      ips=["13.107.6.152/31", "40.96.0.0/13", "52.96.0.0/14", "2603:1006::/40"], tcp="443,80", udp="443"),
    # Hostile sets (IDs 9000 and up), not Microsoft's: every bad value must be
    # skipped with a reason, the good ones kept.
    s(9001, "Skype", T, "Allow", True, True,
      urls=["teams.microsoft.com/path", "https://teams.microsoft.com", "teams.microsoft.com:443", "*", "com",
            "co.uk", "*-admin.teams.microsoft.com", "autodiscover.*.lync.com", "evil..example", "x" * 300,
            "media.teams.microsoft.com", "\u0442\u0435\u0441\u0442.example"],
      ips=["52.112.0.0/33", "not-an-ip", "0.0.0.0/0", "10.0.0.0/8", "127.0.0.1/32", "192.168.1.0/24",
           "100.64.0.0/10", "::/0", "fe80::/64", "fd00:1::/48", "2001:db8::/32", "52.113.0.0/16",
           "::ffff:52.122.0.0/112", "52.112.0.1/14", "1" * 100],
      tcp="0-99999,443,65536,80-79,abc", udp="3478-3481,,tcp/3478"),
    s(9002, "skype", T, "allow", True, True, urls=["teams.microsoft.com"] * 1000, ips=["52.112.0.0/14"] * 1000, tcp="443"),
    s(9003, "Skype", T, "Default", True, True, ips=["13.107.64.0/18", "0.0.0.0/0"], udp="1-65535"),
    s(9004, "Skype", T, "Allow", True, True, ips=["203.0.113.0/24"], tcp="1-65535"),
]
with open("endpoints-worldwide-skype.json", "w") as f:
    json.dump(sets, f, indent=1, ensure_ascii=False)
    f.write("\n")
