-- Users of the User Metadata Service. Email uniqueness is case-insensitive and
-- enforced here, not only in code: two racing creates cannot both succeed.
create table user_metadata.users (
  id uuid primary key,
  name text not null check (length(name) between 1 and 200 and name = btrim(name)),
  email text not null check (length(email) between 3 and 254),
  phone text not null check (phone ~ '^\+[1-9][0-9]{6,14}$'),
  created_at timestamptz not null default now()
);

create unique index users_email_key on user_metadata.users (lower(email));
