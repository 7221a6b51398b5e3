import { type Kysely, sql, type Transaction } from '@keel/platform/db';
import { assertNever } from '@keel/platform/errors';
import type { TelemedicineSchema } from '../database.ts';
import {
  BIO_EXCERPT_MAX_CHARS,
  bioExcerptOf,
  type DoctorSearchCriteria,
  type DoctorSearchItem,
  type DoctorSearchPosition,
  type SlotWindow,
} from './doctor-search.ts';

type SqlFragment = ReturnType<typeof sql<unknown>>;

export type DoctorSearchQuery = {
  criteria: DoctorSearchCriteria;
  slotWindows: readonly SlotWindow[];
  after: DoctorSearchPosition | undefined;
  limit: number;
};

export type DoctorSearchRow = { item: DoctorSearchItem; position: DoctorSearchPosition };

type Row = {
  id: string;
  full_name: string;
  specialties: string[];
  languages: string[];
  years_of_experience: number;
  fee_minor: string;
  currency: string;
  rating: string | null;
  rating_count: number;
  next_available_at: Date | null;
  bio_head: string;
  sort_key: string | null;
};

// A name matches a query whose words are this close to some extent of it
// (pg_trgm word_similarity): "Smyth" scores 0.33 against "Anna Smith", while
// plain similarity of the whole name is only 0.21, and the extension's default
// word threshold (0.6) would miss the typo.
const NAME_WORD_SIMILARITY_THRESHOLD = '0.3';

/**
 * Sets the trigram threshold the `%>` operator (and the trigram index) uses,
 * for the rest of this transaction only: the GUC is the only way to give an
 * indexable operator a threshold.
 */
export async function setNameMatchThreshold(trx: Transaction<TelemedicineSchema>): Promise<void> {
  await sql`select set_config('pg_trgm.word_similarity_threshold', ${NAME_WORD_SIMILARITY_THRESHOLD}, true)`.execute(
    trx,
  );
}

/**
 * One page of verified doctors, `limit` rows after `after` in the criteria's
 * sort, keyset-paginated on (sort key, id). With text, call it in a
 * transaction after `setNameMatchThreshold`.
 */
export async function findDoctorSearchRows(
  db: Kysely<TelemedicineSchema>,
  query: DoctorSearchQuery,
): Promise<DoctorSearchRow[]> {
  const { criteria } = query;
  const conditions: SqlFragment[] = [sql`d.status = 'VERIFIED'`];
  const text = criteria.text;
  // English stems the specialties and bio ("cardiology" → cardiolog); names
  // are indexed with 'simple', so the query is also parsed without stemming
  // ("Jones" would stem to "jone" and miss).
  const textQuery =
    text === null
      ? undefined
      : sql`(websearch_to_tsquery('english', ${text}) || websearch_to_tsquery('simple', ${text}))`;
  if (text !== null) {
    // Each side of the OR has its GIN index (search_document, full_name trigrams): a BitmapOr.
    conditions.push(sql`(d.search_document @@ ${textQuery} or d.full_name %> ${text})`);
  }
  if (criteria.specialty !== null) {
    // Containment, not `= any(specialties)`: only `@>` can use the GIN index on the array.
    conditions.push(sql`d.specialties @> array[${criteria.specialty}]::text[]`);
  }
  if (criteria.language !== null) conditions.push(sql`d.languages @> array[${criteria.language}]::text[]`);
  if (criteria.feeMin !== null) conditions.push(sql`d.fee_minor >= ${criteria.feeMin}`);
  if (criteria.feeMax !== null) conditions.push(sql`d.fee_minor <= ${criteria.feeMax}`);
  if (criteria.currency !== null) conditions.push(sql`d.currency = ${criteria.currency}`);
  // Null ratings fail the comparison: an unrated doctor never passes a minimum.
  if (criteria.minRating !== null) conditions.push(sql`d.rating >= ${criteria.minRating}`);
  for (const window of query.slotWindows) {
    conditions.push(sql`exists (
      select 1 from telemedicine.slots s
      where s.doctor_id = d.id and s.status = 'OPEN'
        and s.starts_at >= ${window.from}::timestamptz and s.starts_at < ${window.to}::timestamptz
    )`);
  }

  const order = sortOf(criteria, textQuery);
  if (query.after !== undefined) conditions.push(order.after(query.after));

  const result = await sql<Row>`
    select d.id, d.full_name, d.specialties, d.languages, d.years_of_experience, d.fee_minor, d.currency,
      d.rating, d.rating_count, d.next_available_at,
      left(d.bio, ${BIO_EXCERPT_MAX_CHARS + 1}) as bio_head,
      ${order.key} as sort_key
    from telemedicine.doctors d
    where ${sql.join(conditions, sql` and `)}
    order by ${order.orderBy}
    limit ${query.limit}
  `.execute(db);
  return result.rows.map((row) => ({
    item: toDoctorSearchItem(row),
    position: { key: row.sort_key, id: row.id },
  }));
}

type SortSql = {
  /** The row's sort key as text, for the cursor. */
  key: SqlFragment;
  orderBy: SqlFragment;
  /** Rows strictly after a position in this order. */
  after: (position: DoctorSearchPosition) => SqlFragment;
};

function sortOf(criteria: DoctorSearchCriteria, textQuery: SqlFragment | undefined): SortSql {
  switch (criteria.sort) {
    case 'relevance': {
      if (textQuery === undefined) throw new Error('relevance sort without text');
      // Rounded so that the cursor's decimal text compares exactly equal to
      // the row's score on the next page (a float's text form need not).
      const score = sql`round((ts_rank(d.search_document, ${textQuery}) + word_similarity(${criteria.text}, d.full_name))::numeric, 6)`;
      return {
        key: sql`${score}::text`,
        orderBy: sql`${score} desc, d.id asc`,
        after: ({ key, id }) =>
          sql`(${score} < ${key}::numeric or (${score} = ${key}::numeric and d.id > ${id}::uuid))`,
      };
    }
    case 'fee':
      // (fee_minor, id) is the partial index doctors_verified_fee_idx.
      return {
        key: sql`d.fee_minor::text`,
        orderBy: sql`d.fee_minor asc, d.id asc`,
        after: ({ key, id }) => sql`(d.fee_minor, d.id) > (${key}::bigint, ${id}::uuid)`,
      };
    case 'rating':
      return {
        key: sql`d.rating::text`,
        orderBy: sql`d.rating desc nulls last, d.id asc`,
        after: ({ key, id }) =>
          key === null
            ? sql`(d.rating is null and d.id > ${id}::uuid)`
            : sql`(d.rating < ${key}::numeric or (d.rating = ${key}::numeric and d.id > ${id}::uuid) or d.rating is null)`,
      };
    case 'next_available': {
      // Microseconds, unlike a JS Date: the cursor must name the exact value.
      const key = sql`to_char(d.next_available_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
      // (next_available_at, id) ascending, nulls last, is the partial index doctors_verified_next_idx.
      return {
        key,
        orderBy: sql`d.next_available_at asc nulls last, d.id asc`,
        after: ({ key: at, id }) =>
          at === null
            ? sql`(d.next_available_at is null and d.id > ${id}::uuid)`
            : sql`((d.next_available_at, d.id) > (${at}::timestamptz, ${id}::uuid) or d.next_available_at is null)`,
      };
    }
    default:
      return assertNever(criteria.sort);
  }
}

function toDoctorSearchItem(row: Row): DoctorSearchItem {
  return {
    id: row.id,
    fullName: row.full_name,
    specialties: row.specialties,
    languages: row.languages,
    yearsOfExperience: row.years_of_experience,
    feeMinor: Number(row.fee_minor),
    currency: row.currency,
    rating: row.rating === null ? null : Number(row.rating),
    ratingCount: row.rating_count,
    nextAvailableAt: row.next_available_at?.toISOString() ?? null,
    bioExcerpt: bioExcerptOf(row.bio_head),
  };
}
