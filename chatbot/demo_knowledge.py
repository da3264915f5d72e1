# ruff: noqa: E501 - prose answers read better unbroken
"""The demo tenant's knowledge base: Driftwood Coffee Roasters (roastery, café, online shop, subscriptions)."""

from __future__ import annotations

# (question, phrasings, answer, tags)
FAQ: list[tuple[str, list[str], str, list[str]]] = [
    (
        "How long does shipping take?",
        [
            "when will my order arrive",
            "when will my beans arrive",
            "delivery time",
            "how fast do you ship",
            "how many days until my coffee gets here",
        ],
        "We roast on Mondays, Wednesdays and Fridays and ship the same day. Within the US, standard shipping takes "
        "2–4 business days; express takes 1–2.",
        ["shipping"],
    ),
    (
        "How much does shipping cost?",
        ["shipping fee", "is shipping free", "delivery cost", "what do you charge for postage"],
        "Standard US shipping is $5.95, and free on orders over $45. Express is $14.95. Subscriptions always ship free.",
        ["shipping"],
    ),
    (
        "Do you ship internationally?",
        ["can you ship to canada", "do you deliver outside the US", "international shipping", "ship to the UK"],
        "We ship to Canada, the UK and the EU. International orders take 5–10 business days; rates are shown at checkout.",
        ["shipping"],
    ),
    (
        "How can I track my order?",
        ["tracking number", "where can I see my delivery status", "track my package"],
        "As soon as your order ships we email a tracking link. You can also find it under Account → Orders.",
        ["orders", "shipping"],
    ),
    (
        "Can I change or cancel my order?",
        ["cancel my order", "change my shipping address", "I ordered the wrong coffee", "edit my order"],
        "Orders can be changed or cancelled until they are roasted, usually within 12 hours. Ask for a person in this "
        "chat with your order number and we'll sort it out.",
        ["orders"],
    ),
    (
        "What is your return policy?",
        ["can I return coffee", "refund policy", "how do I get my money back", "return an item"],
        "Unopened coffee and all equipment can be returned within 30 days for a full refund. If you don't love an "
        "opened bag, tell us: we'll replace it or refund it once per customer.",
        ["returns"],
    ),
    (
        "My order arrived damaged. What should I do?",
        ["the bag was torn", "broken grinder", "package arrived damaged", "my mug was broken"],
        "Sorry about that! Send us a photo through this chat (ask for a person) or to hello@driftwood.coffee and we'll "
        "send a replacement right away, no need to return anything.",
        ["returns", "orders"],
    ),
    (
        "How does the coffee subscription work?",
        ["tell me about your subscription", "coffee club", "how do subscriptions work", "recurring delivery"],
        "Choose a coffee (or roaster's choice), a bag size and how often: every 1, 2, 3 or 4 weeks. Each bag is roasted "
        "to order, ships free, and you save 10%. Pause, skip or cancel any time.",
        ["subscriptions"],
    ),
    (
        "How do I pause or skip a subscription delivery?",
        ["skip a month", "pause my subscription", "I'm going on holiday, hold my coffee", "delay my next delivery"],
        "Go to Account → Subscriptions and choose Skip next delivery or Pause. Changes made before 9am on a roast day "
        "apply to that roast.",
        ["subscriptions"],
    ),
    (
        "How do I cancel my subscription?",
        ["stop my subscription", "end the coffee club", "unsubscribe from deliveries", "cancel recurring order"],
        "Account → Subscriptions → Cancel. There is no fee or minimum term. If something wasn't right, we'd love to know "
        "why.",
        ["subscriptions"],
    ),
    (
        "Can I change the coffee in my subscription?",
        ["swap my subscription coffee", "change roast in my plan", "different beans next time"],
        "Yes: Account → Subscriptions → Change coffee. You can switch beans, grind and bag size before each roast day.",
        ["subscriptions"],
    ),
    (
        "Can I give a subscription as a gift?",
        ["gift subscription", "coffee subscription for my dad", "buy a subscription for someone else"],
        "Yes! Gift subscriptions run for 3, 6 or 12 months, are prepaid, and end automatically. Add a gift message at "
        "checkout.",
        ["subscriptions", "gifts"],
    ),
    (
        "Do you sell gift cards?",
        ["gift voucher", "e-gift card", "gift certificate"],
        "Digital gift cards from $15 to $200 are emailed instantly and can be used online and in the café.",
        ["gifts"],
    ),
    (
        "Should I buy whole bean or ground coffee?",
        ["whole beans or ground", "do you grind the coffee", "pre-ground coffee", "can you grind it for me"],
        "Whole bean stays fresh longest. If you don't have a grinder, choose your brew method at checkout and we'll "
        "grind it fresh for espresso, filter, French press or cold brew.",
        ["coffee"],
    ),
    (
        "How fresh is your coffee?",
        ["when was it roasted", "roast date", "is the coffee fresh"],
        "Every bag is roasted to order and ships within 24 hours of roasting. The roast date is printed on the bag.",
        ["coffee"],
    ),
    (
        "How should I store coffee beans?",
        ["keep coffee fresh", "should I freeze coffee", "best way to store beans"],
        "Keep beans in their resealable bag or an airtight container, away from light, heat and moisture. Don't "
        "refrigerate; freeze only sealed bags you won't open for a few weeks.",
        ["coffee", "brewing"],
    ),
    (
        "Do you have decaf?",
        ["decaffeinated coffee", "caffeine free options", "is there a decaf", "I can't have caffeine"],
        "Yes: our Colombia Swiss Water Decaf is chemical-free and tastes of milk chocolate and red apple.",
        ["coffee"],
    ),
    (
        "Which coffee is best for espresso?",
        ["espresso beans", "good coffee for my espresso machine", "espresso recommendation"],
        "Our Driftwood Espresso blend (Brazil and Ethiopia) is made for espresso and milk drinks; for a brighter shot "
        "try the Ethiopia Guji.",
        ["coffee", "brewing"],
    ),
    (
        "Are your coffees organic and fair trade?",
        ["is the coffee organic", "ethically sourced", "fair trade certified", "where do you source your beans"],
        "We buy directly from farms and cooperatives and pay well above Fairtrade prices. About half our coffees are "
        "certified organic; each product page says which.",
        ["coffee", "sourcing"],
    ),
    (
        "What's the difference between light, medium and dark roast?",
        ["which roast is strongest", "light vs dark roast", "roast levels explained"],
        "Light roasts keep the fruit and acidity of the origin; dark roasts are fuller and more bitter-sweet. Caffeine is "
        "about the same.",
        ["coffee"],
    ),
    (
        "How do I brew pour-over coffee?",
        ["pour over recipe", "V60 ratio", "filter coffee recipe", "how much coffee per cup"],
        "Use 15 g of medium-fine coffee for 250 g of water just off the boil (94 °C). Bloom 30 seconds with 50 g, then "
        "pour slowly to finish in about 3 minutes.",
        ["brewing"],
    ),
    (
        "How do I make cold brew?",
        ["cold brew recipe", "iced coffee at home", "cold brew ratio"],
        "Steep 100 g of coarse coffee in 1 litre of cold water for 14–18 hours in the fridge, then strain. Dilute 1:1 "
        "with water or milk.",
        ["brewing"],
    ),
    (
        "What grinder do you recommend?",
        ["best coffee grinder", "which grinder should I buy", "burr grinder recommendation"],
        "For filter, the Baratza Encore ESP is our favourite value burr grinder; for espresso at home, the Niche Zero. "
        "Both are in the shop.",
        ["equipment"],
    ),
    (
        "Do you offer wholesale?",
        ["coffee for my cafe", "wholesale prices", "supply my restaurant", "office coffee"],
        "Yes: we supply cafés, restaurants and offices with training and equipment support. Email "
        "wholesale@driftwood.coffee with your weekly volume.",
        ["wholesale"],
    ),
    (
        "What are the café's opening hours?",
        ["when are you open", "cafe hours", "are you open on sunday", "what time do you close"],
        "The café at 214 Harbor Street is open Monday–Friday 7am–6pm and Saturday–Sunday 8am–5pm.",
        ["cafe"],
    ),
    (
        "Where is the café?",
        ["cafe address", "where are you located", "how do I find the roastery", "directions"],
        "We're at 214 Harbor Street, next to the ferry terminal. The roastery is behind the café: you can watch us roast "
        "on Wednesdays.",
        ["cafe"],
    ),
    (
        "Is there parking at the café?",
        ["where can I park", "parking near the cafe", "bike racks"],
        "There's free 2-hour street parking on Harbor Street and a public lot on Pier Road. Bike racks are by the door.",
        ["cafe"],
    ),
    (
        "Do you have oat milk or other plant milks?",
        ["dairy free milk", "do you have oat milk", "almond milk", "vegan milk options"],
        "Yes: oat, almond and soy milk at no extra charge.",
        ["cafe"],
    ),
    (
        "Do you have Wi-Fi in the café?",
        ["wifi password", "can I work from the cafe", "internet access"],
        "Free Wi-Fi is available; the password is on your receipt. Laptops are welcome except at weekend brunch time.",
        ["cafe"],
    ),
    (
        "Are dogs allowed in the café?",
        ["can I bring my dog", "pet friendly", "dogs welcome"],
        "Well-behaved dogs are welcome on the patio, and there's a water bowl by the door.",
        ["cafe"],
    ),
    (
        "Do you have food or pastries?",
        ["do you serve breakfast", "gluten free pastries", "what food do you have", "vegan food"],
        "Fresh pastries from Tidewater Bakery every morning, sandwiches until 2pm, and always a vegan and a gluten-free "
        "option.",
        ["cafe"],
    ),
    (
        "Can I book the café for an event?",
        ["private event", "host a party", "rent the space", "coffee tasting for a group"],
        "Yes, evenings after 6pm for up to 30 people. Email events@driftwood.coffee with your date.",
        ["cafe", "events"],
    ),
    (
        "Do you run coffee classes or cuppings?",
        ["coffee workshop", "barista class", "cupping session", "latte art course"],
        "Public cuppings are free on the first Saturday of each month at 10am; home-barista classes run twice a month. "
        "Book on the Events page.",
        ["events"],
    ),
    (
        "Which payment methods do you accept?",
        ["can I pay with paypal", "do you take credit cards", "apple pay", "payment options"],
        "Visa, Mastercard, Amex, Discover, PayPal, Apple Pay and Google Pay online; cards and contactless in the café.",
        ["payments"],
    ),
    (
        "Do you have a loyalty program?",
        ["rewards card", "loyalty points", "do I get points"],
        "Every 10th drink in the café is free with our stamp card, and online orders earn 1 point per dollar ($5 off per "
        "100 points).",
        ["loyalty"],
    ),
    (
        "Do you have discount codes?",
        ["promo code", "coupon", "any sales on", "student discount"],
        "Sign up to our newsletter for 10% off your first order. Subscriptions save 10% on every delivery.",
        ["payments"],
    ),
    (
        "How do I reset my password?",
        ["forgot password", "can't log in", "locked out of my account"],
        "Click “Forgot password” on the sign-in page and we'll email you a reset link (check spam if it doesn't arrive "
        "in a few minutes).",
        ["account"],
    ),
    (
        "How do I update my address or payment details?",
        ["change my card", "update billing address", "new shipping address for my subscription"],
        "Account → Settings lets you change your addresses and saved cards; subscription changes apply from the next "
        "roast.",
        ["account"],
    ),
    (
        "Do you sell brewing equipment?",
        ["do you sell kettles", "buy a chemex", "aeropress", "coffee gear"],
        "Yes: grinders, kettles, drippers, AeroPress, Chemex and filters. Equipment ships free with any coffee "
        "subscription.",
        ["equipment"],
    ),
    (
        "Is your packaging recyclable?",
        ["compostable bags", "sustainable packaging", "eco friendly"],
        "Our bags are curbside-recyclable (LDPE #4) and our shipping boxes are 100% recycled cardboard.",
        ["sustainability"],
    ),
]

ARTICLES: list[tuple[str, str, list[str]]] = [
    (
        "Getting started with your coffee subscription",
        "Your subscription starts with the next roast day after you sign up. We roast on Mondays, Wednesdays and "
        "Fridays, and ship the same afternoon.\n\nYou can change your coffee, grind, bag size and frequency at any time "
        "from Account → Subscriptions. Changes made before 9am on a roast day apply to that roast.\n\nSkipping a delivery "
        "or pausing for up to three months is free. Cancelling is one click and there is no minimum term.",
        ["subscriptions"],
    ),
    (
        "Dialing in espresso at home",
        "Start with 18 g of coffee in a double basket and aim for 36 g of espresso in 25–30 seconds.\n\nIf the shot runs "
        "fast and tastes sour, grind finer. If it runs slow and tastes bitter, grind coarser. Change one thing at a time."
        "\n\nFresh coffee needs 5–7 days of rest after roasting for espresso; filter coffee is best from day 3.",
        ["brewing"],
    ),
    (
        "How we source our coffee",
        "We buy directly from a dozen farms and cooperatives in Ethiopia, Colombia, Guatemala, Brazil and Kenya, most of "
        "whom we have worked with for over five years.\n\nWe publish the price we pay per pound for every coffee on its "
        "product page; on average it is more than twice the Fairtrade minimum.",
        ["sourcing"],
    ),
    (
        "Wholesale partnership",
        "Cafés, restaurants and offices get weekly roasts, barista training, and equipment service.\n\nMinimum order is "
        "10 kg per week. Contact wholesale@driftwood.coffee for a tasting visit.",
        ["wholesale"],
    ),
]

# Visitor questions the demo bot could not answer: they fill the "unanswered questions" page.
UNANSWERED = [
    "do you sell matcha?",
    "is there matcha latte",
    "do you have matcha powder",
    "Do you sell matcha",
    "can I pick up my online order at the cafe?",
    "click and collect?",
    "can I collect my order in store",
    "are you hiring baristas",
    "any jobs available?",
    "do you roast on sundays",
]
