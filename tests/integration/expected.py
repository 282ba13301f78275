"""What the simulator's dataset says each stream must deliver."""
import copy
import json


def expected_records(dataset, stream):
    bans = dataset.bans
    sources = {
        "account": lambda: [dataset.account],
        "routing_settings": lambda: [dataset.routing_settings],
        "agents": lambda: dataset.agents,
        "bans": lambda: sorted([dict(b, type=b.get("type", "ip_address")) for b in bans["ip_address"]]
                               + [dict(b, type=b.get("type", "visitor")) for b in bans["visitor"]],
                               key=lambda b: b["id"]),
        "banned_ips": lambda: bans["ip_address"],
        "banned_visitors": lambda: bans["visitor"],
        "chats": lambda: dataset.chats,
        "agent_timeline": lambda: dataset.agent_timeline,
        "departments": lambda: dataset.departments,
        "goals": lambda: dataset.goals,
        "roles": lambda: dataset.roles,
        "skills": lambda: dataset.skills,
        "shortcuts": lambda: dataset.shortcuts,
        "triggers": lambda: dataset.triggers,
    }
    return copy.deepcopy(list(sources[stream]()))


def key_of(stream_key_properties, record):
    return tuple(json.dumps(record.get(k)) for k in stream_key_properties)
