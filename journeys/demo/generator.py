"""A realistic, deterministic dataset for a coffee roaster with a cafe and an online shop. Pure Python.

Customers have a persona (subscriber, cafe regular, online repeat buyer, occasional, one-time) that
sets how often and where they buy; some lapse. Orders follow seasonality (gift season, a summer dip)
and a weekly rhythm (cafe weekends, online early in the week), at local opening hours. Online orders
come with browsing, cart and checkout events; abandoned carts, anonymous first visits (identified at
sign-up), newsletter opens and clicks fill in the rest. Feedback scores follow the experience: late
deliveries and refunds score low, loyal customers promote. Subscribers order monthly. Same seed and end
date, same data.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

CUSTOMER_COLUMNS = [
    "id",
    "tenant_id",
    "external_id",
    "email",
    "name",
    "phone",
    "attributes",
    "consent_personalization",
    "consent_personalization_at",
    "consent_personalization_source",
    "consent_marketing",
    "consent_marketing_at",
    "consent_marketing_source",
    "first_seen",
    "last_seen",
    "created",
    "updated",
]
ORDER_COLUMNS = [
    "id",
    "tenant_id",
    "external_id",
    "customer_id",
    "placed_at",
    "status",
    "total",
    "currency",
    "channel",
    "created",
    "updated",
]
LINE_COLUMNS = ["tenant_id", "order_id", "product_id", "quantity", "unit_price"]
EVENT_COLUMNS = [
    "tenant_id",
    "customer_id",
    "anonymous_id",
    "type",
    "name",
    "properties",
    "url",
    "channel",
    "occurred_at",
    "received_at",
    "idempotency_key",
]
FEEDBACK_COLUMNS = [
    "tenant_id",
    "kind",
    "score",
    "comment",
    "channel",
    "customer_id",
    "order_id",
    "conversation_id",
    "page_url",
    "created",
]
VISITOR_COLUMNS = ["tenant_id", "anonymous_id", "customer_id", "identified_at"]


@dataclass(frozen=True)
class ProductSpec:
    sku: str
    name: str
    category: str
    price_cents: int
    description: str
    where: str  # "cafe", "online" or "both"


PRODUCTS = [
    ProductSpec(
        "ESP-HOUSE-250",
        "House Espresso Blend, 250 g",
        "Coffee beans",
        1400,
        "Chocolate, hazelnut, a long finish.",
        "both",
    ),
    ProductSpec(
        "ESP-HOUSE-1K",
        "House Espresso Blend, 1 kg",
        "Coffee beans",
        4600,
        "The cafe's espresso, by the kilo.",
        "online",
    ),
    ProductSpec(
        "ETH-YIRG-250", "Ethiopia Yirgacheffe, 250 g", "Coffee beans", 1800, "Washed. Jasmine, bergamot, lemon.", "both"
    ),
    ProductSpec("COL-HUILA-250", "Colombia Huila, 250 g", "Coffee beans", 1600, "Red apple, caramel, cocoa.", "both"),
    ProductSpec(
        "KEN-AA-250", "Kenya Nyeri AA, 250 g", "Coffee beans", 1950, "Blackcurrant, grapefruit, bright.", "online"
    ),
    ProductSpec(
        "GUA-ANT-250", "Guatemala Antigua, 250 g", "Coffee beans", 1650, "Milk chocolate, orange peel.", "online"
    ),
    ProductSpec(
        "SUM-DARK-250",
        "Sumatra Dark Roast, 250 g",
        "Coffee beans",
        1550,
        "Cedar, dark chocolate, heavy body.",
        "online",
    ),
    ProductSpec(
        "DECAF-SWP-250", "Swiss Water Decaf, 250 g", "Coffee beans", 1600, "All of the taste, none of the buzz.", "both"
    ),
    ProductSpec(
        "SEASONAL-250", "Winter Solstice Blend, 250 g", "Coffee beans", 1750, "Seasonal: spice, dried fig.", "online"
    ),
    ProductSpec(
        "SUB-MONTHLY",
        "Roaster's Choice subscription, monthly",
        "Subscriptions",
        2200,
        "Two 250 g bags a month, picked by our roasters.",
        "online",
    ),
    ProductSpec("GIFT-CARD-25", "Gift card, $25", "Gifts", 2500, "Digital gift card.", "online"),
    ProductSpec("GIFT-BOX", "Tasting gift box", "Gifts", 4200, "Three origins, tasting notes, a mug.", "online"),
    ProductSpec("V60-02", "Hario V60 dripper", "Brewing gear", 2800, "Ceramic pour-over dripper, size 02.", "online"),
    ProductSpec("CHEMEX-6", "Chemex 6-cup", "Brewing gear", 5200, "Glass pour-over brewer.", "online"),
    ProductSpec("FILTERS-100", "Paper filters, 100", "Brewing gear", 900, "Bleached cone filters.", "both"),
    ProductSpec("GRINDER-HAND", "Hand grinder", "Brewing gear", 8900, "Steel burrs, 40 settings.", "online"),
    ProductSpec("KETTLE-GOOSE", "Gooseneck kettle", "Brewing gear", 6500, "Pour control for filter brewing.", "online"),
    ProductSpec("MUG-DW", "Driftwood mug", "Merchandise", 1800, "Stoneware, 350 ml.", "both"),
    ProductSpec("TOTE-DW", "Canvas tote", "Merchandise", 1500, "Carries two kilos of beans.", "both"),
    ProductSpec("CAFE-ESPRESSO", "Espresso", "Cafe drinks", 300, "", "cafe"),
    ProductSpec("CAFE-LATTE", "Latte", "Cafe drinks", 475, "", "cafe"),
    ProductSpec("CAFE-CAPP", "Cappuccino", "Cafe drinks", 450, "", "cafe"),
    ProductSpec("CAFE-FLATW", "Flat white", "Cafe drinks", 450, "", "cafe"),
    ProductSpec("CAFE-DRIP", "Drip coffee", "Cafe drinks", 325, "", "cafe"),
    ProductSpec("CAFE-COLDBREW", "Cold brew", "Cafe drinks", 500, "", "cafe"),
    ProductSpec("CAFE-CHAI", "Chai latte", "Cafe drinks", 500, "", "cafe"),
    ProductSpec("CAFE-CROISSANT", "Butter croissant", "Pastries", 375, "", "cafe"),
    ProductSpec("CAFE-MUFFIN", "Blueberry muffin", "Pastries", 350, "", "cafe"),
    ProductSpec("CAFE-BANANA", "Banana bread slice", "Pastries", 400, "", "cafe"),
]

FIRST = [
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Ava",
    "Elijah",
    "Sophia",
    "James",
    "Isabella",
    "William",
    "Mia",
    "Benjamin",
    "Charlotte",
    "Lucas",
    "Amelia",
    "Henry",
    "Harper",
    "Theodore",
    "Evelyn",
    "Jack",
    "Abigail",
    "Levi",
    "Emily",
    "Alexander",
    "Ella",
    "Jackson",
    "Elizabeth",
    "Mateo",
    "Camila",
    "Daniel",
    "Luna",
    "Michael",
    "Sofia",
    "Mason",
    "Avery",
    "Sebastian",
    "Mila",
    "Ethan",
    "Aria",
    "Logan",
    "Scarlett",
    "Owen",
    "Penelope",
    "Samuel",
    "Layla",
    "Jacob",
    "Chloe",
    "Asher",
    "Victoria",
    "Aiden",
    "Madison",
    "John",
    "Eleanor",
    "Joseph",
    "Grace",
    "Wyatt",
    "Nora",
    "David",
    "Riley",
    "Leo",
    "Zoey",
    "Luke",
    "Hannah",
    "Julian",
    "Hazel",
    "Hudson",
    "Lily",
    "Grayson",
    "Ellie",
    "Matthew",
    "Violet",
    "Ezra",
    "Lillian",
    "Gabriel",
    "Zoe",
    "Carter",
    "Stella",
    "Isaac",
    "Aurora",
    "Jayden",
    "Natalie",
    "Luca",
    "Emilia",
    "Anthony",
    "Everly",
    "Dylan",
    "Leah",
    "Lincoln",
    "Aubrey",
    "Thomas",
    "Willow",
    "Maverick",
    "Addison",
    "Elias",
    "Lucy",
    "Priya",
    "Arjun",
    "Mei",
    "Hiroshi",
    "Fatima",
    "Omar",
    "Sina",
    "Kofi",
    "Amara",
    "Diego",
    "Lucia",
    "Mateus",
    "Ingrid",
    "Lars",
    "Aisha",
    "Tariq",
]
LAST = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Gomez",
    "Phillips",
    "Evans",
    "Turner",
    "Diaz",
    "Parker",
    "Cruz",
    "Edwards",
    "Collins",
    "Reyes",
    "Stewart",
    "Morris",
    "Morales",
    "Murphy",
    "Cook",
    "Rogers",
    "Gutierrez",
    "Ortiz",
    "Morgan",
    "Cooper",
    "Peterson",
    "Bailey",
    "Reed",
    "Kelly",
    "Howard",
    "Ramos",
    "Kim",
    "Cox",
    "Ward",
    "Richardson",
    "Watson",
    "Brooks",
    "Chavez",
    "Wood",
    "James",
    "Bennett",
    "Gray",
    "Mendoza",
    "Ruiz",
    "Hughes",
    "Price",
    "Alvarez",
    "Castillo",
    "Sanders",
    "Patel",
    "Myers",
    "Long",
    "Ross",
    "Foster",
    "Jimenez",
    "Okafor",
    "Haddad",
    "Larsen",
    "Novak",
    "Kowalski",
    "Tanaka",
    "Singh",
    "Chen",
]
CITIES = [
    "Chicago",
    "Evanston",
    "Oak Park",
    "Naperville",
    "Milwaukee",
    "Madison",
    "Minneapolis",
    "Detroit",
    "Indianapolis",
    "St. Louis",
    "Denver",
    "Austin",
]
DOMAINS = ["example.com", "example.net", "example.org"]
SEARCHES = [
    "decaf",
    "espresso",
    "ethiopia",
    "gift",
    "grinder",
    "subscription",
    "light roast",
    "chemex",
    "filters",
    "cold brew",
    "kenya",
    "dark roast",
]

CSAT_COMMENTS = {
    1: [
        "Arrived a week late and the bag was split.",
        "Never got my order, had to ask for a refund.",
        "Beans tasted stale, roast date was a month old.",
    ],
    2: [
        "Shipping took far too long.",
        "Coffee was fine but the delivery was late again.",
        "Wrong grind size in the bag.",
    ],
    3: ["Okay, nothing special.", "Good coffee, slow shipping.", "The latte was lukewarm."],
    4: ["Tasty, will order again.", "Nice packaging and fast delivery.", "Friendly barista, good flat white."],
    5: [
        "Best beans in town!",
        "The Ethiopia is incredible.",
        "Arrived in two days, roasted the day before. Perfect.",
        "Love the subscription picks.",
    ],
}
NPS_COMMENTS = {
    "detractor": ["Too expensive for what it is.", "Deliveries are unreliable.", "Quality dropped lately."],
    "passive": ["Good coffee, a bit pricey.", "Fine, but I also buy elsewhere."],
    "promoter": [
        "I tell all my friends about Driftwood.",
        "My morning isn't complete without it.",
        "The subscription is the best thing I pay for.",
    ],
}

# persona -> (share, orders per 30 days while active, where they buy, share who lapse)
PERSONAS: dict[str, tuple[float, float, str, float]] = {
    "subscriber": (0.08, 1.0, "subscription", 0.30),
    "cafe_regular": (0.20, 3.5, "cafe", 0.30),
    "online_repeat": (0.20, 0.7, "online", 0.35),
    "occasional": (0.24, 0.25, "both", 0.40),
    "one_time": (0.28, 0.0, "both", 0.0),
}


@dataclass(frozen=True)
class DemoConfig:
    tenant_id: int
    customers: int
    orders: int
    seed: int
    end: date
    tz: tzinfo
    currency: str = "USD"
    months: int = 24


@dataclass
class Block:
    """Rows for a run of consecutive customers, ready for the table loaders."""

    customers: list[tuple[Any, ...]]
    orders: list[tuple[Any, ...]]
    lines: list[tuple[Any, ...]]
    events: list[tuple[Any, ...]]
    feedback: list[tuple[Any, ...]]
    visitors: list[tuple[Any, ...]]


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _season(day: date) -> float:
    """Demand multiplier by date: gift season peak, January lull, summer dip."""
    doy = day.timetuple().tm_yday
    weight = 1.0 + 0.12 * math.cos(2 * math.pi * (doy - 15) / 365)  # cooler months drink more hot coffee
    if (day.month == 11 and day.day >= 20) or (day.month == 12 and day.day <= 23):
        weight *= 1.45
    elif day.month == 1 and day.day <= 20:
        weight *= 0.8
    return weight


SUBSCRIPTION_DAYS = 30
CAFE_WEEKDAY = [0.85, 0.9, 0.95, 1.0, 1.1, 1.45, 1.35]
ONLINE_WEEKDAY = [1.25, 1.15, 1.05, 1.0, 0.9, 0.8, 0.85]


class DemoGenerator:
    """Iterate `blocks()` to get the dataset in pieces; ids come from the caller's reserved ranges."""

    def __init__(self, cfg: DemoConfig, *, customer_ids: range, order_ids: range, product_ids: dict[str, int]) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.customer_ids, self.order_ids, self.product_ids = customer_ids, order_ids, product_ids
        self.end_day = cfg.end
        self.start_day = cfg.end - timedelta(days=int(cfg.months * 30.44))
        self.now = datetime(cfg.end.year, cfg.end.month, cfg.end.day, tzinfo=UTC)
        self.span = (self.end_day - self.start_day).days - 1  # the last full day is the day before `end`
        self._offsets: dict[int, timedelta] = {}
        self._day_weight_cafe = [self._weight(d, CAFE_WEEKDAY) for d in range(self.span + 1)]
        self._day_weight_online = [self._weight(d, ONLINE_WEEKDAY) for d in range(self.span + 1)]
        self.cafe = [p for p in PRODUCTS if p.where == "cafe"]
        self.cafe_drinks = [p for p in self.cafe if p.category == "Cafe drinks"]
        self.pastries = [p for p in self.cafe if p.category == "Pastries"]
        self.beans = [p for p in PRODUCTS if p.category == "Coffee beans" and p.sku != "SEASONAL-250"]
        self.extras = [p for p in PRODUCTS if p.category in ("Brewing gear", "Merchandise")]
        self.gifts = [p for p in PRODUCTS if p.category == "Gifts"]
        self.by_sku = {p.sku: p for p in PRODUCTS}
        self._order_n = 0
        self._event_n = 0
        self._visitor_n = 0

    # --- time helpers ---------------------------------------------------------------------------

    def _weight(self, offset: int, weekday_weights: list[float]) -> float:
        day = self.start_day + timedelta(days=offset)
        return _season(day) * weekday_weights[day.weekday()]

    def _local_to_utc(self, day_offset: int, minutes: int) -> datetime:
        utc_offset = self._offsets.get(day_offset)
        if utc_offset is None:
            day = self.start_day + timedelta(days=day_offset)
            local_noon = datetime(day.year, day.month, day.day, 12, tzinfo=self.cfg.tz)
            utc_offset = self._offsets[day_offset] = local_noon.utcoffset() or timedelta(0)
        day = self.start_day + timedelta(days=day_offset)
        return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=minutes) - utc_offset

    def _pick_day(self, lo: int, hi: int, weights: list[float]) -> int:
        rng = self.rng
        for _ in range(20):
            d = rng.randint(lo, hi)
            if rng.random() * 1.9 < weights[d]:
                return d
        return rng.randint(lo, hi)

    def _cafe_minutes(self) -> int:
        hour = min(17, max(7, int(self.rng.gauss(9.5, 2.3))))
        return hour * 60 + self.rng.randrange(60)

    def _online_minutes(self) -> int:
        hour = int(self.rng.choice([7, 8, 9, 12, 12, 13, 17, 19, 20, 20, 21, 21, 22, 22, 23]))
        return hour * 60 + self.rng.randrange(60)

    # --- plan -----------------------------------------------------------------------------------

    def _plan(self) -> list[tuple[str, int, int, int]]:
        """Per customer: (persona, signup day, last active day, order count), totalling cfg.orders.
        Subscribers order every SUBSCRIPTION_DAYS while active; the other personas share the rest."""
        rng, span = self.rng, self.span
        names, shares = list(PERSONAS), [PERSONAS[p][0] for p in PERSONAS]
        plans: list[list[Any]] = []
        raw_total = 0.0
        monthly_total = 0
        for _ in range(self.cfg.customers):
            persona = rng.choices(names, shares)[0]
            _, rate, _, lapse_share = PERSONAS[persona]
            signup = min(span - 3, int(span * rng.random() ** 0.8))  # the business is growing
            last = span
            if rng.random() < lapse_share and span - signup > 120:
                last = rng.randint(signup + 30, span - 75)
            if persona == "subscriber":
                monthly_total += (last - signup) // SUBSCRIPTION_DAYS + 1
                raw = 0.0
            else:
                raw = 1.0 if persona == "one_time" else max(1.0, rate * (last - signup) / 30)
            raw_total += raw
            plans.append([persona, signup, last, raw])
        # Too few orders asked for to keep every subscription monthly: subscribers are scaled like the rest.
        monthly = monthly_total <= self.cfg.orders and raw_total > 0
        if not monthly:
            for plan in plans:
                if plan[0] == "subscriber":
                    plan[3] = max(1.0, (plan[2] - plan[1]) / SUBSCRIPTION_DAYS)
            raw_total = sum(plan[3] for plan in plans)
        scale = (self.cfg.orders - (monthly_total if monthly else 0)) / raw_total if raw_total else 0
        total = 0
        flexible = []
        for plan in plans:
            if monthly and plan[0] == "subscriber":
                plan[3] = (plan[2] - plan[1]) // SUBSCRIPTION_DAYS + 1
            else:
                expected = plan[3] * scale
                plan[3] = int(expected) + (1 if rng.random() < expected - int(expected) else 0)
                flexible.append(plan)
            total += plan[3]
        # Land exactly on the requested number of orders (subscriptions keep their rhythm).
        flexible = flexible or plans
        while total != self.cfg.orders and flexible:
            plan = flexible[rng.randrange(len(flexible))]
            if total < self.cfg.orders:
                plan[3] += 1
                total += 1
            elif plan[3] > 0:
                plan[3] -= 1
                total -= 1
        return [(p[0], p[1], p[2], p[3]) for p in plans]

    # --- rows -----------------------------------------------------------------------------------

    def _event(
        self,
        rows: list[tuple[Any, ...]],
        customer_id: int | None,
        anon: str,
        type_: str,
        at: datetime,
        *,
        name: str = "",
        props: dict[str, Any] | None = None,
        url: str = "",
        channel: str = "web",
    ) -> None:
        self._event_n += 1
        rows.append(
            (
                self.cfg.tenant_id,
                customer_id,
                anon,
                type_,
                name,
                props or {},
                url,
                channel,
                at,
                at + timedelta(seconds=2),
                f"demo-{self.cfg.seed}-{self._event_n}",
            )
        )

    def _basket(self, where: str, day: int) -> list[tuple[ProductSpec, int]]:
        rng = self.rng
        if where == "cafe":
            month = (self.start_day + timedelta(days=day)).month
            drinks = self.cafe_drinks
            drink = rng.choice(drinks)
            if drink.sku == "CAFE-COLDBREW" and month in (11, 12, 1, 2):
                drink = self.by_sku["CAFE-LATTE"]
            basket = [(drink, 1 if rng.random() < 0.8 else 2)]
            if rng.random() < 0.35:
                basket.append((rng.choice(self.pastries), 1))
            if rng.random() < 0.08:
                basket.append((rng.choice([p for p in self.beans if p.where == "both"]), 1))
            return basket
        if where == "subscription":
            return [(self.by_sku["SUB-MONTHLY"], 1)]
        day_date = self.start_day + timedelta(days=day)
        gift_season = (day_date.month == 11 and day_date.day >= 20) or day_date.month == 12
        basket = [(rng.choice(self.beans), 1 if rng.random() < 0.7 else 2)]
        if gift_season and rng.random() < 0.3:
            basket.append((self.by_sku["SEASONAL-250"], 1))
        if rng.random() < (0.35 if gift_season else 0.06):
            basket.append((rng.choice(self.gifts), 1))
        if rng.random() < 0.12:
            basket.append((rng.choice(self.extras), 1))
        if rng.random() < 0.2:
            basket.append((rng.choice(self.beans), 1))
        return basket

    def blocks(self, size: int = 2000) -> Iterator[Block]:
        plans = self._plan()
        order_ids = iter(self.order_ids)
        for start in range(0, len(plans), size):
            block = Block([], [], [], [], [], [])
            for index in range(start, min(start + size, len(plans))):
                self._customer(block, index, plans[index], order_ids)
            yield block

    def _customer(self, block: Block, index: int, plan: tuple[str, int, int, int], order_ids: Iterator[int]) -> None:
        rng, cfg = self.rng, self.cfg
        persona, signup, last_day, n_orders = plan
        cid = self.customer_ids[index]
        first, last = rng.choice(FIRST), rng.choice(LAST)
        ext = f"DW{10000 + index}"
        email = f"{first}.{last}{index}@{DOMAINS[index % 3]}".lower()
        signup_at = self._local_to_utc(signup, self._online_minutes())
        marketing = rng.random() < (0.75 if persona in ("subscriber", "online_repeat") else 0.45)
        personalization = rng.random() < 0.7
        where = PERSONAS[persona][2]
        attributes = {"city": rng.choice(CITIES), "signup_source": "cafe" if where == "cafe" else "online"}
        if rng.random() < 0.4:
            attributes["favorite_roast"] = rng.choice(["light", "medium", "dark", "espresso"])
        last_seen = signup_at
        events = block.events

        # A first anonymous visit, identified at sign-up.
        if where != "cafe" and rng.random() < 0.6:
            self._visitor_n += 1
            anon = f"v-{cfg.seed}-{self._visitor_n}"
            visit = signup_at - timedelta(days=rng.randint(0, 20), minutes=rng.randint(5, 600))
            self._event(events, cid, anon, "page_view", visit, url="/")
            self._event(
                events,
                cid,
                anon,
                "product_view",
                visit + timedelta(minutes=2),
                props={"sku": rng.choice(self.beans).sku},
                url="/shop",
            )
            self._event(events, cid, anon, "sign_up", signup_at, url="/account/new")
            block.visitors.append((cfg.tenant_id, anon, cid, signup_at))
            signup_at = visit
        if where == "subscription":
            self._event(events, cid, "", "subscription_started", signup_at + timedelta(minutes=5), url="/subscribe")

        # Orders.
        experience = 0.0  # running sum of good (+) and bad (-) experiences, drives NPS
        if where == "subscription":  # every SUBSCRIPTION_DAYS, unless the plan had to squeeze them
            step = SUBSCRIPTION_DAYS
            if signup + (n_orders - 1) * step > last_day:
                step = max(1, (last_day - signup) // max(n_orders, 1))
            days = [min(signup + i * step, self.span) for i in range(n_orders)]
        else:
            weights = self._day_weight_cafe if where == "cafe" else self._day_weight_online
            days = sorted(self._pick_day(signup, max(signup, last_day), weights) for _ in range(n_orders))
        for day in days:
            channel = where
            if where == "both":
                channel = "cafe" if rng.random() < 0.5 else "online"
            elif where == "subscription":
                channel = "online"
            placed = self._local_to_utc(day, self._cafe_minutes() if channel == "cafe" else self._online_minutes())
            if placed < signup_at:
                placed = signup_at + timedelta(minutes=10)
            if placed >= self.now:  # the last local evening can run past midnight UTC
                placed = self.now - timedelta(minutes=rng.randint(5, 300))
            basket = self._basket("subscription" if where == "subscription" else channel, day)
            oid = next(order_ids)
            self._order_n += 1
            total = 0
            promo = channel == "online" and rng.random() < 0.06
            for product, quantity in basket:
                price = product.price_cents * 9 // 10 if promo else product.price_cents
                total += price * quantity
                block.lines.append((cfg.tenant_id, oid, self.product_ids[product.sku], quantity, _money(price)))
            late = channel == "online" and rng.random() < 0.08
            age = (self.now - placed).days
            if age < 1:
                status = "placed"
            elif age < 3 and channel == "online":
                status = "paid"
            else:
                r = rng.random()
                status = "refunded" if r < (0.12 if late else 0.015) else "cancelled" if r > 0.98 else "fulfilled"
            block.orders.append(
                (
                    oid,
                    cfg.tenant_id,
                    f"DW-{100000 + self._order_n}",
                    cid,
                    placed,
                    status,
                    _money(total),
                    cfg.currency,
                    "cafe" if channel == "cafe" else "online",
                    placed,
                    placed,
                )
            )
            last_seen = max(last_seen, placed)
            if channel == "online" and where != "subscription":
                t = placed - timedelta(minutes=rng.randint(4, 40))
                self._event(events, cid, "", "page_view", t, url="/")
                for product, _ in basket[:2]:
                    t += timedelta(minutes=rng.randint(1, 4))
                    self._event(
                        events,
                        cid,
                        "",
                        "product_view",
                        t,
                        props={"sku": product.sku},
                        url=f"/shop/{product.sku.lower()}",
                    )
                    self._event(
                        events,
                        cid,
                        "",
                        "add_to_cart",
                        t + timedelta(seconds=40),
                        props={"sku": product.sku},
                        url=f"/shop/{product.sku.lower()}",
                    )
                self._event(events, cid, "", "checkout_started", placed - timedelta(minutes=2), url="/checkout")
                self._event(
                    events, cid, "", "order_placed", placed, props={"total": _money(total)}, url="/checkout/done"
                )
            # Feedback follows the experience.
            if status in ("fulfilled", "refunded") and rng.random() < 0.12:
                mean = 1.7 if status == "refunded" else 2.4 if late else 4.4 if channel == "online" else 4.5
                score = max(1, min(5, round(rng.gauss(mean, 0.8))))
                experience += score - 3.5
                comment = rng.choice(CSAT_COMMENTS[score]) if rng.random() < 0.35 else ""
                at = placed + timedelta(days=rng.randint(1, 5) if channel == "online" else 0, hours=rng.randint(1, 8))
                block.feedback.append(
                    (
                        cfg.tenant_id,
                        "csat",
                        score,
                        comment,
                        "email" if channel == "online" else "cafe",
                        cid,
                        oid,
                        None,
                        "",
                        min(at, self.now),
                    )
                )
            elif late:
                experience -= 1.5
            if late and rng.random() < 0.4:
                at = placed + timedelta(days=rng.randint(4, 9))
                score = max(1, min(7, round(rng.gauss(3.2, 1.2))))
                block.feedback.append((cfg.tenant_id, "ces", score, "", "chat", cid, oid, None, "", min(at, self.now)))

        # Abandoned carts and browsing.
        if where in ("online", "both", "subscription") or rng.random() < 0.2:
            sessions = rng.randint(0, 2) + int(0.4 * len(days))
            for _ in range(sessions):
                day = rng.randint(signup, max(signup, min(self.span, last_day + 30)))
                t = self._local_to_utc(day, self._online_minutes())
                if t > self.now:
                    continue
                product = rng.choice(self.beans)
                self._event(events, cid, "", "page_view", t, url="/")
                if rng.random() < 0.3:
                    self._event(
                        events, cid, "", "search", t + timedelta(minutes=1), name=rng.choice(SEARCHES), url="/search"
                    )
                self._event(
                    events,
                    cid,
                    "",
                    "product_view",
                    t + timedelta(minutes=2),
                    props={"sku": product.sku},
                    url=f"/shop/{product.sku.lower()}",
                )
                if rng.random() < 0.55:
                    self._event(
                        events,
                        cid,
                        "",
                        "add_to_cart",
                        t + timedelta(minutes=3),
                        props={"sku": product.sku},
                        url=f"/shop/{product.sku.lower()}",
                    )
                    if rng.random() < 0.4:
                        self._event(events, cid, "", "checkout_started", t + timedelta(minutes=5), url="/checkout")
                last_seen = max(last_seen, t)

        # Newsletter, for those who allow marketing: monthly while active and a while after.
        if marketing:
            open_rate = 0.45 if persona in ("subscriber", "cafe_regular") else 0.3
            month_day = signup + (30 - signup % 30)
            stop = min(self.span, last_day + 90)
            while month_day <= stop:
                if rng.random() < open_rate:
                    t = self._local_to_utc(month_day, 8 * 60 + rng.randrange(600))
                    self._event(events, cid, "", "email_open", t, name="newsletter", channel="email")
                    if rng.random() < 0.25:
                        self._event(
                            events,
                            cid,
                            "",
                            "email_click",
                            t + timedelta(minutes=1),
                            name="newsletter",
                            url="/shop",
                            channel="email",
                        )
                    last_seen = max(last_seen, t)
                month_day += 30
        if where == "subscription" and last_day < self.span:
            at = self._local_to_utc(last_day + 3, self._online_minutes())
            self._event(events, cid, "", "subscription_cancelled", at, url="/account/subscription")
            last_seen = max(last_seen, at)

        # NPS: customers with some history, once or twice a year.
        if len(days) >= 2 and rng.random() < 0.35:
            lapsed = last_day < self.span
            base = 8.6 if persona in ("subscriber", "cafe_regular") else 7.2
            base += 0.5 * experience - (2.5 if lapsed else 0)
            score = max(0, min(10, round(rng.gauss(base, 1.4))))
            bucket = "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"
            at = self._local_to_utc(min(self.span, last_day + rng.randint(0, 20)), self._online_minutes())
            comment = rng.choice(NPS_COMMENTS[bucket]) if rng.random() < 0.4 else ""
            block.feedback.append(
                (cfg.tenant_id, "nps", score, comment, "email", cid, None, None, "", min(at, self.now))
            )

        last_seen = min(last_seen, self.now)
        phone = f"+1 312 555 {rng.randrange(10000):04d}" if rng.random() < 0.4 else ""
        block.customers.append(
            (
                cid,
                cfg.tenant_id,
                ext,
                email,
                f"{first} {last}",
                phone,
                attributes,
                personalization,
                signup_at if personalization else None,
                "demo" if personalization else "",
                marketing,
                signup_at if marketing else None,
                "demo" if marketing else "",
                signup_at,
                last_seen,
                signup_at,
                last_seen,
            )
        )


def default_orders(customers: int) -> int:
    """About six orders per customer over two years."""
    return customers * 6


ProgressFn = Callable[[int, int], None]
