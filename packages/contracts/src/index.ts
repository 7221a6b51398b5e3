// Event schemas shared between services (STYLE.md rule 3) live here. None
// exist yet: the first, `orders.order_placed.v1` and its envelope, arrive with
// the jobs-and-events work. Services import contracts, never each other.
export {};
