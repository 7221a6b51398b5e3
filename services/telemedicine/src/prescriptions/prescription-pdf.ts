import PDFDocument from 'pdfkit';
import type { PrintablePrescription } from './prescription.service.ts';

const MARGIN = 50;

/**
 * The printable prescription: doctor and registration number, patient, date,
 * diagnosis, the items as a table, advice, and a verification block (id, key
 * id, signature) a pharmacy types into `POST /telemedicine/prescriptions/verify`
 * or checks offline against the published key.
 */
export async function renderPrescriptionPdf(printable: PrintablePrescription): Promise<Buffer> {
  const { prescription, patientFullName } = printable;
  const { document } = prescription;
  const pdf = new PDFDocument({
    size: 'A4',
    margin: MARGIN,
    // The document's own dates, not the wall clock: the same prescription prints the same.
    info: {
      Title: `Prescription ${document.id}`,
      Author: document.doctor.full_name,
      CreationDate: prescription.issuedAt,
      ModDate: prescription.issuedAt,
    },
  });
  const chunks: Buffer[] = [];
  const finished = new Promise<Buffer>((resolve, reject) => {
    pdf.on('data', (chunk: Buffer) => chunks.push(chunk));
    pdf.on('end', () => resolve(Buffer.concat(chunks)));
    pdf.on('error', reject);
  });

  pdf.font('Helvetica-Bold').fontSize(18).text('Prescription');
  if (prescription.version > 1) {
    pdf
      .font('Helvetica')
      .fontSize(9)
      .text(`Version ${document.version}, correcting ${document.supersedes_id}`);
  }
  if (prescription.status === 'SUPERSEDED') {
    pdf
      .font('Helvetica-Bold')
      .fontSize(10)
      .fillColor('red')
      .text('SUPERSEDED by a corrected version')
      .fillColor('black');
  }
  pdf.moveDown();

  pdf.font('Helvetica-Bold').fontSize(11).text(document.doctor.full_name);
  pdf.font('Helvetica').fontSize(10).text(`Registration number: ${document.doctor.registration_number}`);
  pdf.moveDown(0.5);
  pdf.text(`Patient: ${patientFullName}`);
  pdf.text(`Date: ${document.issued_at.slice(0, 10)}`);
  pdf.moveDown();

  pdf.font('Helvetica-Bold').fontSize(11).text('Diagnosis');
  pdf.font('Helvetica').fontSize(10).text(document.diagnosis);
  pdf.moveDown();

  pdf.font('Helvetica-Bold').fontSize(11).text('Medicines');
  pdf.moveDown(0.3);
  pdf.fontSize(9).table({
    columnStyles: ['*', 60, 70, 80, 55, '*'],
    data: [
      ['Medicine', 'Strength', 'Dosage', 'Frequency', 'Duration', 'Instructions'].map((text) => ({
        text,
        type: 'TH' as const,
        font: { family: 'Helvetica-Bold' },
      })),
      ...document.items.map((item) => [
        item.medicine,
        item.strength,
        item.dosage,
        item.frequency,
        item.duration,
        item.instructions,
      ]),
    ],
  });
  pdf.font('Helvetica').moveDown();

  if (document.advice !== '') {
    pdf.font('Helvetica-Bold').fontSize(11).text('Advice', MARGIN);
    pdf.font('Helvetica').fontSize(10).text(document.advice);
    pdf.moveDown();
  }

  pdf.font('Helvetica-Bold').fontSize(10).text('Verification', MARGIN);
  pdf
    .font('Courier')
    .fontSize(8)
    .text(`Prescription id: ${document.id}`)
    .text(`Key id (kid): ${prescription.signingKeyId}`)
    .text(`Signature (Ed25519): ${prescription.signature}`)
    .text(`SHA-256 of the signed document: ${prescription.documentDigest}`);
  pdf
    .font('Helvetica')
    .fontSize(8)
    .text(
      'Verify with POST /telemedicine/prescriptions/verify {prescription_id, signature}; the public key is ' +
        'published at GET /telemedicine/prescriptions/signing-keys.',
    );

  pdf.end();
  return finished;
}
